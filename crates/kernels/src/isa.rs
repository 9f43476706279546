//! The vector extension the hand-written CPU kernels (the Winograd transforms and their
//! even/odd copies) are compiled for. The crate targets baseline x86-64, whose SSE2 code ran
//! those transforms at half the speed, so each has AVX-512 and AVX2 builds chosen at run time:
//! the best the CPU has, capped by [`crate::KernelOptions::max_isa`] (which is how tests and
//! benches reach the AVX2 build on an AVX-512 machine).

/// An instruction-set level, ordered: `Generic < Avx2 < Avx512`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Isa {
    /// What the compiler emits for the crate's target (SSE2 on x86-64).
    Generic,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F.
    #[default]
    Avx512,
}

impl Isa {
    /// The best level this CPU has.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    }

    /// The level a kernel capped at `self` runs at on this CPU.
    pub fn capped(self) -> Isa {
        self.min(Isa::detected())
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Generic, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&i| i <= Isa::detected())
            .collect()
    }

    /// Lower-case name: `generic`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Isa;

    #[test]
    fn capping_never_exceeds_the_cpu_or_the_cap() {
        let best = Isa::detected();
        assert_eq!(Isa::Avx512.capped(), best);
        assert_eq!(Isa::Generic.capped(), Isa::Generic);
        assert!(Isa::Avx2.capped() <= Isa::Avx2);
        assert_eq!(Isa::available().last(), Some(&best));
        assert_eq!(Isa::available()[0], Isa::Generic);
    }
}

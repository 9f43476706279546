//! Downloading and extracting LFW (official site, mirrors, checksums, resume).

//! arcface-eval.

//! arcface-train.

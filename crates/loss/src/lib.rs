//! arcface-loss.

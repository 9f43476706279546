//! arcface-backbone.

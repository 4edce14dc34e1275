//! Helpers of the differential tests: the Go reference programs (built on demand) and the
//! generated inputs they and the models are given.
#![allow(dead_code)]

pub mod diff;
pub mod goref;

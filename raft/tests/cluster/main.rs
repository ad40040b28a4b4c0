//! Cluster tests on the in-process router: real sled in temp dirs, real openraft, a network
//! that can isolate, partition, drop and delay.

mod fixture;

mod batch;
mod crash;
mod election;
mod forward;
mod membership;
mod partition;
mod restart;
mod snapshot;

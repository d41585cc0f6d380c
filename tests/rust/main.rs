//! Black-box tests of the sync server: native yrs clients over real WebSockets.
//! One test binary (one link step on a 2-core machine); one module per concern.

mod access;
mod admission;
mod api;
mod cluster;
mod convergence;
mod crash;
mod disk_full;
mod durability;
mod faults;
mod fuzz;
mod heavy;
mod history;
mod hostile;
mod lifecycle;
mod migration;
mod neighbours;
mod persistence;
mod sockets;
mod startup;

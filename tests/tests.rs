mod util;
mod imaging;
mod ad;
mod convert;
mod graph;
mod sidecar;

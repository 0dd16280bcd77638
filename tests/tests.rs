mod ad;
mod convert;
mod graph;
mod imaging;
mod import;
mod kerberos;
mod sidecar;
mod util;

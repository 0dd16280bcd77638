mod util;
mod ad;

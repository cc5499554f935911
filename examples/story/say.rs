//! `say!(verbose, ...)`: `println!` when the story runs verbose (the
//! quickstart), nothing when it runs as a test.

macro_rules! say {
    ($verbose:expr, $($arg:tt)*) => {
        if $verbose {
            println!($($arg)*);
        }
    };
}

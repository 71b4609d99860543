//! QEMU guests: the initramfs the agent boots in, the QEMU command line, the console the
//! agent reports through, and the kept guests later runs restore instead of booting.

pub mod console;
pub mod initramfs;
pub mod qemu;
pub mod qmp;
pub mod snapshot;
pub mod userland;

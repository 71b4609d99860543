//! QEMU guests: the initramfs the agent boots in, the QEMU command line, and the console
//! the agent reports through.

pub mod console;
pub mod initramfs;
pub mod qemu;
pub mod userland;

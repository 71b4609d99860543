//! The guest's console as the agent's input: the host sends the plan there as one line.

/// Makes standard input, when it is a terminal, deliver bytes as they come and echo
/// none: a canonical tty keeps at most 4095 bytes of a line (a plan is longer) and would
/// echo the plan back onto the console the host reads records from. Output processing
/// is left as it was. Not a terminal (a pipe, a file): nothing to change.
pub fn raw_input() {
    // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios this function owns.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return;
        }
        t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        t.c_lflag &= !(libc::ISIG | libc::IEXTEN);
        t.c_iflag &= !(libc::IXON | libc::ICRNL | libc::INLCR | libc::IGNCR | libc::ISTRIP);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        libc::tcsetattr(0, libc::TCSANOW, &t);
    }
}

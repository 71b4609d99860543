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

/// Sleeps until the next multiple of [`ROUND_S`] seconds of CLOCK_MONOTONIC. The plan
/// arrives at a guest time the host decides (when it sent the line, after a boot or a
/// restore); what runs after it then starts at the same guest time in every run. Loops
/// of a booted arm64 6.12 guest and a restored one differed by 8 insn in one loop of 66
/// without it. Under icount an idle guest's clock jumps to its next timer, so the wait
/// costs next to no host time.
pub fn wait_for_a_round_time() {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespecs owned here; CLOCK_MONOTONIC exists on Linux.
    unsafe {
        if libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) != 0 {
            return;
        }
        let at = libc::timespec {
            tv_sec: (now.tv_sec / ROUND_S + 1) * ROUND_S,
            tv_nsec: 0,
        };
        while libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &at,
            std::ptr::null_mut(),
        ) == libc::EINTR
        {}
    }
}

/// The agent is ready about 2 s after the guest's start; a plan sent within 8 s of that
/// starts at 10 s of guest time.
const ROUND_S: libc::time_t = 10;

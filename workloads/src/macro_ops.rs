//! The macro workloads' operations: pipe ping-pong with a peer process, a tmpfs read,
//! loopback TCP ping-pong, fork/exit/wait and open/close. Each loop does nothing but its
//! operations; setting up and tearing down (pipes, sockets, the peer) happens outside.

use std::ffi::CStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use tracelab_model::workload::Workload;

pub(crate) enum MacroOps {
    Pipe(PipePeer),
    FileRead(OwnedFd),
    Tcp(TcpPair),
    Fork,
    OpenClose,
}

const DEV_NULL: &CStr = c"/dev/null";

/// The last OS error, with what was being done.
fn os(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl MacroOps {
    pub(crate) fn new(kind: Workload) -> Result<MacroOps, String> {
        Ok(match kind {
            Workload::Pipe => MacroOps::Pipe(PipePeer::start()?),
            Workload::FileRead => MacroOps::FileRead(tmpfs_file()?),
            Workload::Tcp => MacroOps::Tcp(TcpPair::connect()?),
            Workload::Fork => MacroOps::Fork,
            Workload::OpenClose => MacroOps::OpenClose,
            other => return Err(format!("{other} is not a macro workload")),
        })
    }

    pub(crate) fn helper_pids(&self) -> Vec<u32> {
        match self {
            MacroOps::Pipe(p) => vec![p.child as u32],
            _ => Vec::new(),
        }
    }

    #[inline(never)]
    pub(crate) fn run(&mut self, ops: u64) -> Result<(), String> {
        match self {
            MacroOps::Pipe(p) => p.run(ops),
            MacroOps::FileRead(fd) => file_read_loop(fd, ops),
            MacroOps::Tcp(t) => t.run(ops),
            MacroOps::Fork => fork_loop(ops),
            MacroOps::OpenClose => open_close_loop(ops),
        }
    }
}

/// A memfd (tmpfs) holding one page: reads of it reach `shmem_file_read_iter` and no
/// other file system's read path.
fn tmpfs_file() -> Result<OwnedFd, String> {
    // SAFETY: the name is a valid C string; flags are plain bits.
    let fd = unsafe { libc::memfd_create(c"tracelab-read".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(os("memfd_create"));
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let page = [0x5au8; 4096];
    // SAFETY: `page` is valid for its length; fd is ours.
    let n = unsafe { libc::write(fd.as_raw_fd(), page.as_ptr().cast(), page.len()) };
    if n != page.len() as isize {
        return Err(os("filling the tmpfs file"));
    }
    Ok(fd)
}

#[inline(never)]
fn file_read_loop(fd: &OwnedFd, ops: u64) -> Result<(), String> {
    let mut buf = [0u8; 64];
    for _ in 0..ops {
        // SAFETY: `buf` is valid for 64 bytes; fd is an open memfd.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n != buf.len() as isize {
            return Err(os("pread of the tmpfs file"));
        }
    }
    std::hint::black_box(&buf);
    Ok(())
}

#[inline(never)]
fn fork_loop(ops: u64) -> Result<(), String> {
    for _ in 0..ops {
        // SAFETY: the child only calls _exit, which is async-signal-safe.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os("fork"));
        }
        if pid == 0 {
            // SAFETY: _exit ends the child without running anything of the parent's.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `status` is writable; pid is our child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(os("waitpid"));
        }
    }
    Ok(())
}

#[inline(never)]
fn open_close_loop(ops: u64) -> Result<(), String> {
    for _ in 0..ops {
        // SAFETY: DEV_NULL is a valid C string.
        let fd = unsafe { libc::open(DEV_NULL.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(os("open /dev/null"));
        }
        // SAFETY: fd was just opened by us and is closed once.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// A child process that answers each byte written to it with one byte back.
pub(crate) struct PipePeer {
    to_child: OwnedFd,
    from_child: OwnedFd,
    child: libc::pid_t,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os("pipe2"));
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl PipePeer {
    fn start() -> Result<PipePeer, String> {
        let (down_r, down_w) = pipe()?;
        let (up_r, up_w) = pipe()?;
        // SAFETY: the child only calls read, write and _exit (async-signal-safe).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os("fork of the pipe peer"));
        }
        if pid == 0 {
            let (r, w) = (down_r.as_raw_fd(), up_w.as_raw_fd());
            // The parent's ends stay open in the child but are never used; EOF comes when
            // the parent closes its write end (the child's copy is closed first).
            // SAFETY: closing our copy of the parent's write end, once.
            unsafe { libc::close(down_w.as_raw_fd()) };
            let mut b = 0u8;
            loop {
                // SAFETY: `b` is one writable byte; r and w are open pipe ends.
                let n = unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) };
                // SAFETY: as above.
                if n != 1 || unsafe { libc::write(w, (&b as *const u8).cast(), 1) } != 1 {
                    // SAFETY: ends the child.
                    unsafe { libc::_exit(0) };
                }
            }
        }
        drop(down_r);
        drop(up_w);
        let peer = PipePeer {
            to_child: down_w,
            from_child: up_r,
            child: pid,
        };
        Ok(peer)
    }

    #[inline(never)]
    fn run(&mut self, ops: u64) -> Result<(), String> {
        let mut b = 1u8;
        let (w, r) = (self.to_child.as_raw_fd(), self.from_child.as_raw_fd());
        for _ in 0..ops {
            // SAFETY: `b` is one valid byte; w and r are open pipe ends.
            if unsafe { libc::write(w, (&b as *const u8).cast(), 1) } != 1 {
                return Err(os("write to the pipe peer"));
            }
            // SAFETY: as above.
            if unsafe { libc::read(r, (&mut b as *mut u8).cast(), 1) } != 1 {
                return Err(os("read from the pipe peer"));
            }
        }
        Ok(())
    }
}

impl Drop for PipePeer {
    fn drop(&mut self) {
        // Killed rather than sent EOF: it ends however the peer is doing.
        // SAFETY: signals and then reaps our own child.
        unsafe { libc::kill(self.child, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(self.child, &mut status, 0) };
    }
}

/// Two connected loopback TCP sockets in this process.
pub(crate) struct TcpPair {
    client: TcpStream,
    server: TcpStream,
    /// The loopback interface was down and was brought up here: put it back.
    lo_was_down: bool,
}

impl TcpPair {
    fn connect() -> Result<TcpPair, String> {
        let lo_was_down = loopback_up()?;
        let pair = (|| -> std::io::Result<(TcpStream, TcpStream)> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = TcpStream::connect(listener.local_addr()?)?;
            let (server, _) = listener.accept()?;
            client.set_nodelay(true)?;
            server.set_nodelay(true)?;
            Ok((client, server))
        })();
        match pair {
            Ok((client, server)) => Ok(TcpPair {
                client,
                server,
                lo_was_down,
            }),
            Err(e) => {
                if lo_was_down {
                    let _ = set_loopback(false);
                }
                Err(format!("loopback TCP connection: {e}"))
            }
        }
    }

    #[inline(never)]
    fn run(&mut self, ops: u64) -> Result<(), String> {
        let mut b = [1u8];
        for _ in 0..ops {
            let step = (|| -> std::io::Result<()> {
                self.client.write_all(&b)?;
                self.server.read_exact(&mut b)?;
                self.server.write_all(&b)?;
                self.client.read_exact(&mut b)
            })();
            step.map_err(|e| format!("loopback TCP ping-pong: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for TcpPair {
    fn drop(&mut self) {
        if self.lo_was_down {
            let _ = set_loopback(false);
        }
    }
}

/// Brings `lo` up if it is down (a guest's init leaves it down); returns whether it was.
fn loopback_up() -> Result<bool, String> {
    let was_up = loopback_flags(None)?;
    if !was_up {
        loopback_flags(Some(true))?;
    }
    Ok(!was_up)
}

fn set_loopback(up: bool) -> Result<bool, String> {
    loopback_flags(Some(up))
}

/// Reads `lo`'s IFF_UP, and sets it to `set` if given; returns whether it was up.
fn loopback_flags(set: Option<bool>) -> Result<bool, String> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os("socket for the loopback's flags"));
    }
    // SAFETY: socket returned a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming lo; SIOCGIFFLAGS fills its flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(os("reading lo's flags"));
    }
    // SAFETY: SIOCGIFFLAGS wrote the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up_bit = libc::IFF_UP as libc::c_short;
    let was_up = flags & up_bit != 0;
    if let Some(up) = set {
        req.ifr_ifru.ifru_flags = if up { flags | up_bit } else { flags & !up_bit };
        // SAFETY: as above; SIOCSIFFLAGS reads the flags member.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
            return Err(os("setting lo up"));
        }
    }
    Ok(was_up)
}

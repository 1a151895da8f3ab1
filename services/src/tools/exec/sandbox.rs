//! The OS sandbox a command runs in (Linux).
//!
//! - Landlock: writes (create, remove, rename, truncate, device ioctls) only beneath the
//!   workspace, the call's private temp dir and a few devices (`/dev/null`, ...);
//!   reading and executing stay allowed everywhere. Signals and abstract UNIX sockets
//!   cannot reach processes outside the sandbox (Landlock ABI 6 and later), nor, without
//!   network, UNIX sockets outside the workspace (ABI 9 and later).
//! - A pid namespace whose first process (pid 1) is the shell: when it exits, or is
//!   killed, the kernel kills every process left in the namespace, `setsid` or not.
//! - A mount namespace with a private `/proc` showing only the call's own processes,
//!   and `tools.exec.hidePaths` covered (an empty read-only tmpfs over a directory,
//!   `/dev/null` over a file).
//! - A net namespace with only a loopback that is down, unless the call was granted
//!   network.
//! - As root, the capability bounding set keeps only Docker's default set (no module
//!   loading, raw I/O, mounting, ...); as non-root, a user namespace mapping the
//!   node's own uid and gid, so commands hold no capability at all.
//!
//! The fork is done in process: the spawned process (the keeper) unshares the
//! namespaces, forks the namespace's pid 1 and waits for it, while pid 1 mounts `/proc`,
//! restricts itself and becomes `sh`. Doing it here rather than through util-linux
//! `unshare` lets `/proc` be mounted before Landlock forbids mounting, writes the user
//! namespace maps before Landlock forbids writing `/proc`, and needs no binary. The
//! keeper kills pid 1 when the node closes the call's stop pipe (or dies), then waits
//! for it: pid 1 is reaped only after every process of its namespace is gone, so when
//! the keeper exits nothing of the call is left. Both keeper and pid 1 die with their
//! parent (`PR_SET_PDEATHSIG`), so a node killed with SIGKILL takes its commands along.
//!
//! Everything the forked processes use is prepared in the node before spawning; they
//! run only system calls (no allocation, no locks).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};
use serde::Serialize;

use crate::config::{ExecSandbox, ToolsConfig};

/// The Landlock rights asked for; an older kernel enforces those it knows. Without
/// network, ABI 9 rights also keep commands from connecting to UNIX sockets outside the
/// workspace (a daemon's socket is a way out); with network they may.
const TARGET_ABI: ABI = ABI::V9;
const NETWORK_ABI: ABI = ABI::V8;

/// Devices ordinary programs write to.
const DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Capabilities root keeps inside the sandbox: Docker's default set (CHOWN,
/// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP).
const KEPT_CAPS: [libc::c_int; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Exit code of a keeper or pid 1 that found its parent gone before it could start.
const PARENT_GONE: libc::c_int = 137;

/// How the sandbox's namespaces are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NamespaceMode {
    /// Directly: the node runs as root (or holds CAP_SYS_ADMIN).
    Root,
    /// Inside a new user namespace mapping the node's uid and gid (unprivileged).
    User,
}

/// What this machine offers the `exec` sandbox; for startup logs and `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    /// The kernel's Landlock ABI version; `None` without Landlock.
    pub landlock_abi: Option<i32>,
    /// Why Landlock is unavailable, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landlock_missing: Option<String>,
    /// How pid, mount and net namespaces are created; `None` if they cannot be.
    pub namespaces: Option<NamespaceMode>,
    /// Why namespaces are unavailable, if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces_missing: Option<String>,
}

impl SandboxStatus {
    /// Whether `exec` can run sandboxed; Landlock is needed only when commands are
    /// confined to the workspace (`tools.restrictToWorkspace`).
    pub fn is_available(&self, restrict_writes: bool) -> bool {
        self.missing(restrict_writes).is_none()
    }

    /// What is missing for a sandboxed `exec`, in words.
    pub fn missing(&self, restrict_writes: bool) -> Option<String> {
        let mut missing: Vec<&str> = Vec::new();
        if restrict_writes && let Some(why) = &self.landlock_missing {
            missing.push(why);
        }
        if let Some(why) = &self.namespaces_missing {
            missing.push(why);
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

impl std::fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.landlock_abi {
            Some(abi) => write!(f, "Landlock ABI {abi}")?,
            None => f.write_str("no Landlock")?,
        }
        match self.namespaces {
            Some(NamespaceMode::Root) => f.write_str("; pid, mount and net namespaces (as root)"),
            Some(NamespaceMode::User) => {
                f.write_str("; pid, mount and net namespaces (in a user namespace)")
            }
            None => f.write_str("; no namespaces"),
        }?;
        if let Some(missing) = self.missing(true) {
            write!(f, " ({missing})")?;
        }
        Ok(())
    }
}

/// Why `exec` cannot run sandboxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "tools.exec.sandbox is \"{mode}\" but this machine cannot sandbox commands: {missing}. \
         Set tools.exec.sandbox to \"off\" to run commands unconfined"
    )]
    Unavailable { mode: &'static str, missing: String },
    #[error("cannot prepare the command's sandbox: {0}")]
    Prepare(String),
}

/// What this machine offers the sandbox, probed once (a trial command in fresh
/// namespaces) and then remembered. Call it at startup to log it and show it in
/// `/health`.
pub fn sandbox_status() -> &'static SandboxStatus {
    static STATUS: OnceLock<SandboxStatus> = OnceLock::new();
    STATUS.get_or_init(probe)
}

/// For startup: with `tools.exec.sandbox` `"on"`, an error naming what is missing
/// when this machine cannot sandbox commands (the node should refuse to start).
/// `"auto"` and `"off"` always pass (`auto` refuses each command instead).
pub fn require_sandbox(config: &ToolsConfig) -> Result<&'static SandboxStatus, SandboxError> {
    let status = sandbox_status();
    if config.exec.sandbox == ExecSandbox::On
        && let Some(missing) = status.missing(config.restrict_to_workspace)
    {
        return Err(SandboxError::Unavailable {
            mode: "on",
            missing,
        });
    }
    Ok(status)
}

fn probe() -> SandboxStatus {
    let (landlock_abi, landlock_missing) = match landlock_abi() {
        Ok(abi) => (Some(abi), None),
        Err(why) => (None, Some(why)),
    };
    let (namespaces, namespaces_missing) = match probe_namespaces() {
        Ok(mode) => (Some(mode), None),
        Err(why) => (None, Some(why)),
    };
    SandboxStatus {
        landlock_abi,
        landlock_missing,
        namespaces,
        namespaces_missing,
    }
}

fn landlock_abi() -> Result<i32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) creates nothing; it returns the
    // ABI version or fails with ENOSYS/EOPNOTSUPP.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version >= 1 {
        return i32::try_from(version).map_err(|_| "Landlock reports no valid ABI".to_owned());
    }
    Err(match io::Error::last_os_error().raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            "Landlock is built into the kernel but disabled (add landlock to the lsm= boot \
             parameter)"
                .to_owned()
        }
        _ => "the kernel has no Landlock (Linux 5.13 or later built with \
              CONFIG_SECURITY_LANDLOCK)"
            .to_owned(),
    })
}

fn probe_namespaces() -> Result<NamespaceMode, String> {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let modes: &[NamespaceMode] = if root {
        &[NamespaceMode::Root, NamespaceMode::User]
    } else {
        &[NamespaceMode::User]
    };
    let mut reason = String::new();
    for &mode in modes {
        match trial(mode) {
            Ok(()) => return Ok(mode),
            Err(why) => reason = why,
        }
    }
    Err(format!(
        "cannot create pid, mount and net namespaces ({reason}); as non-root this needs \
         unprivileged user namespaces (user.max_user_namespaces above 0, \
         kernel.apparmor_restrict_unprivileged_userns=0 where AppArmor restricts them), in a \
         container CAP_SYS_ADMIN or a seccomp profile allowing unshare"
    ))
}

/// Runs `/bin/sh -c 'exit 0'` in fresh namespaces.
fn trial(mode: NamespaceMode) -> Result<(), String> {
    let (stop_reader, stop_writer) = io::pipe().map_err(|e| e.to_string())?;
    let plan = Plan::new(
        mode,
        false,
        stop_reader.as_raw_fd(),
        stop_writer.as_raw_fd(),
        None,
    );
    let mut command = std::process::Command::new("/bin/sh");
    command
        .args(["-c", "exit 0"])
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: `Plan::enter` runs only async-signal-safe system calls on memory the
    // plan owns (see there).
    unsafe {
        command.pre_exec(move || plan.enter());
    }
    let status = command.status().map_err(|e| e.to_string())?;
    drop((stop_reader, stop_writer));
    if status.success() {
        Ok(())
    } else {
        Err(format!("a trial command ended with {status}"))
    }
}

/// One call's sandbox, prepared in the node before the command is spawned.
pub(super) struct Jail {
    tmp: tempfile::TempDir,
    hidden: Vec<Hidden>,
    mode: NamespaceMode,
    network: bool,
    ruleset: Option<OwnedFd>,
    stop_reader: Option<io::PipeReader>,
    stop_writer: Option<io::PipeWriter>,
}

impl Jail {
    /// Checks that the machine can sandbox and prepares the call's temp dir, Landlock
    /// ruleset (when `restrict_writes`) and stop pipe.
    pub(super) fn prepare(
        root: &Path,
        config: &ToolsConfig,
        network: bool,
    ) -> Result<Self, SandboxError> {
        let restrict_writes = config.restrict_to_workspace;
        let mode = config.exec.sandbox;
        let status = sandbox_status();
        let (Some(namespaces), None) = (status.namespaces, status.missing(restrict_writes)) else {
            return Err(SandboxError::Unavailable {
                mode: if mode == ExecSandbox::On {
                    "on"
                } else {
                    "auto"
                },
                missing: status.missing(restrict_writes).unwrap_or_default(),
            });
        };
        let hidden = hidden_paths(root, &config.exec.hide_paths)?;
        let tmp = tempfile::Builder::new()
            .prefix("facio-exec-")
            .tempdir()
            .map_err(|e| SandboxError::Prepare(format!("cannot create a temp dir: {e}")))?;
        let ruleset = if restrict_writes {
            let abi = if network { NETWORK_ABI } else { TARGET_ABI };
            Some(write_ruleset(&[root, tmp.path()], abi)?)
        } else {
            None
        };
        let (stop_reader, stop_writer) =
            io::pipe().map_err(|e| SandboxError::Prepare(format!("cannot create a pipe: {e}")))?;
        Ok(Self {
            tmp,
            hidden,
            mode: namespaces,
            network,
            ruleset,
            stop_reader: Some(stop_reader),
            stop_writer: Some(stop_writer),
        })
    }

    /// The call's private temp dir (its `TMPDIR`), removed when the jail is dropped.
    pub(super) fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Makes `command` start inside the sandbox.
    pub(super) fn confine(
        &self,
        command: &mut tokio::process::Command,
    ) -> Result<(), SandboxError> {
        let (Some(reader), Some(writer)) = (&self.stop_reader, &self.stop_writer) else {
            return Err(SandboxError::Prepare(
                "the sandbox was already used".to_owned(),
            ));
        };
        let mut plan = Plan::new(
            self.mode,
            self.network,
            reader.as_raw_fd(),
            writer.as_raw_fd(),
            self.ruleset.as_ref().map(AsRawFd::as_raw_fd),
        );
        plan.hidden = self.hidden.clone();
        // SAFETY: `Plan::enter` runs only async-signal-safe system calls on memory the
        // plan owns (see there).
        unsafe {
            command.pre_exec(move || plan.enter());
        }
        Ok(())
    }

    /// After the spawn: the node's copies of what only the sandbox needs are closed.
    pub(super) fn spawned(&mut self) {
        self.stop_reader = None;
        self.ruleset = None;
    }

    /// Ends the call's namespace: the keeper kills its pid 1, waits until every process
    /// in it is gone, then exits.
    pub(super) fn stop(&mut self) {
        self.stop_writer = None;
    }
}

/// A path to cover in the call's mount namespace.
#[derive(Debug, Clone)]
struct Hidden {
    path: CString,
    directory: bool,
}

/// `tools.exec.hidePaths` as they exist now (symlinks resolved); one that holds the
/// workspace or the temp directory is refused, since those would be hidden too.
fn hidden_paths(root: &Path, paths: &[std::path::PathBuf]) -> Result<Vec<Hidden>, SandboxError> {
    let needed = [root.to_owned(), std::env::temp_dir()].map(|p| p.canonicalize().unwrap_or(p));
    let mut hidden = Vec::new();
    for path in paths {
        // Nothing to hide where nothing exists.
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if let Some(held) = needed.iter().find(|p| p.starts_with(&real)) {
            return Err(SandboxError::Prepare(format!(
                "tools.exec.hidePaths: {} holds {} (the workspace or the temp directory) and \
                 cannot be hidden",
                path.display(),
                held.display()
            )));
        }
        let directory = real.is_dir();
        let path = CString::new(real.as_os_str().as_bytes()).map_err(|_| {
            SandboxError::Prepare(format!(
                "tools.exec.hidePaths: {} has a NUL byte",
                path.display()
            ))
        })?;
        hidden.push(Hidden { path, directory });
    }
    Ok(hidden)
}

fn write_ruleset(writable: &[&Path], abi: ABI) -> Result<OwnedFd, SandboxError> {
    let created = Ruleset::default()
        .handle_access(AccessFs::from_write(abi))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(writable, AccessFs::from_write(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(DEVICES, AccessFs::from_write(abi))))
        .map_err(|e| SandboxError::Prepare(format!("Landlock: {e}")))?;
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| SandboxError::Prepare("the kernel enforces no Landlock ruleset".to_owned()))
}

/// What the forked processes do, all of it decided in the node.
struct Plan {
    /// The node's pid: the keeper's parent.
    node: libc::pid_t,
    /// `unshare(2)` flags.
    namespaces: libc::c_int,
    /// `uid_map` and `gid_map` contents, in user-namespace mode.
    user_maps: Option<(Vec<u8>, Vec<u8>)>,
    drop_caps: bool,
    last_cap: libc::c_int,
    stop_reader: RawFd,
    stop_writer: RawFd,
    ruleset: Option<RawFd>,
    hidden: Vec<Hidden>,
}

impl Plan {
    fn new(
        mode: NamespaceMode,
        network: bool,
        stop_reader: RawFd,
        stop_writer: RawFd,
        ruleset: Option<RawFd>,
    ) -> Self {
        let mut namespaces = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
        if !network {
            namespaces |= libc::CLONE_NEWNET;
        }
        let user_maps = (mode == NamespaceMode::User).then(|| {
            namespaces |= libc::CLONE_NEWUSER;
            // SAFETY: getuid(2) and getgid(2) cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            (
                format!("{uid} {uid} 1\n").into_bytes(),
                format!("{gid} {gid} 1\n").into_bytes(),
            )
        });
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        Self {
            node: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
            namespaces,
            user_maps,
            drop_caps: mode == NamespaceMode::Root,
            last_cap,
            stop_reader,
            stop_writer,
            ruleset,
            hidden: Vec::new(),
        }
    }

    /// Runs in the spawned child between fork and exec. It becomes the keeper, and its
    /// own child (the namespace's pid 1) returns from here to exec the command.
    ///
    /// Only async-signal-safe system calls, on memory prepared by the node: the child
    /// of a multi-threaded process may not allocate or take locks. The second fork is a
    /// raw `clone` so that no `pthread_atfork` handler runs.
    fn enter(&self) -> io::Result<()> {
        // SAFETY: each call below is a plain system call on valid pointers to memory
        // this plan owns (C string literals, the map buffers, stack values); none
        // allocates or locks. `_exit` ends the process without running destructors.
        unsafe {
            check(prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            if libc::getppid() != self.node {
                libc::_exit(PARENT_GONE);
            }
            check(libc::unshare(self.namespaces))?;
            if let Some((uid_map, gid_map)) = &self.user_maps {
                write_all(c"/proc/self/setgroups", b"deny")?;
                write_all(c"/proc/self/uid_map", uid_map)?;
                write_all(c"/proc/self/gid_map", gid_map)?;
            }
            // Mounts made here must not propagate to the node's namespace; if `/`
            // cannot be made private, no mount is made at all.
            let private = libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0;
            let mut alive = [-1; 2];
            check(libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC))?;
            let pid = libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            if pid < 0 {
                return Err(io::Error::last_os_error());
            }
            if pid > 0 {
                self.keep(pid as libc::pid_t, alive[1]);
            }
            // pid 1 of the new namespace.
            libc::close(alive[1]);
            libc::close(self.stop_writer);
            check(prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            // The keeper holds the other end of `alive`: a hang-up means it died before
            // the death signal was armed.
            let mut keeper = libc::pollfd {
                fd: alive[0],
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut keeper, 1, 0) > 0 {
                libc::_exit(PARENT_GONE);
            }
            libc::close(alive[0]);
            // No controlling terminal: nothing can be typed into the node's terminal.
            check(libc::setsid())?;
            // Hidden paths are required: without private mounts the command does not run.
            if !self.hidden.is_empty() && !private {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            for hidden in &self.hidden {
                let covered = if hidden.directory {
                    libc::mount(
                        c"tmpfs".as_ptr(),
                        hidden.path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        c"mode=0555,size=4k".as_ptr().cast(),
                    )
                } else {
                    libc::mount(
                        c"/dev/null".as_ptr(),
                        hidden.path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    )
                };
                check(covered)?;
            }
            if private {
                // Best effort: a private /proc shows only the call's own processes.
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                );
            }
            if self.drop_caps {
                for cap in 0..=self.last_cap {
                    if !KEPT_CAPS.contains(&cap) {
                        prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong);
                    }
                }
            }
            check(prctl(libc::PR_SET_NO_NEW_PRIVS, 1))?;
            if let Some(ruleset) = self.ruleset {
                let restricted = libc::syscall(
                    libc::SYS_landlock_restrict_self,
                    ruleset as libc::c_long,
                    0 as libc::c_ulong,
                );
                check(restricted as libc::c_int)?;
            }
        }
        Ok(())
    }

    /// The keeper: holds nothing of the node but the stop pipe, waits for pid 1, kills
    /// it when the stop pipe closes, and exits with its status once it is reaped.
    ///
    /// # Safety
    /// Only in the forked child, as part of `enter`.
    unsafe fn keep(&self, init: libc::pid_t, alive: RawFd) -> ! {
        // SAFETY: system calls only, as in `enter`; the process never returns to Rust
        // code of the node.
        unsafe {
            for signal in 1..=64 {
                if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            let pidfd = libc::syscall(
                libc::SYS_pidfd_open,
                init as libc::c_long,
                0 as libc::c_ulong,
            ) as libc::c_int;
            libc::dup2(self.stop_reader, 0);
            if pidfd >= 0 {
                libc::dup2(pidfd, 1);
            } else {
                libc::close(1);
            }
            libc::dup2(alive, 2);
            let closed = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_ulong,
                libc::c_ulong::from(u32::MAX),
                0 as libc::c_ulong,
            );
            if closed != 0 {
                for fd in 3..4096 {
                    libc::close(fd);
                }
            }
            if pidfd >= 0 {
                let mut fds = [
                    libc::pollfd {
                        fd: 0,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: 1,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                loop {
                    if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
                        if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                            continue;
                        }
                        break;
                    }
                    if fds[1].revents != 0 {
                        break;
                    }
                    if fds[0].revents != 0 {
                        libc::kill(init, libc::SIGKILL);
                        break;
                    }
                }
            }
            let mut status = 0;
            while libc::waitpid(init, &mut status, 0) < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                1
            };
            libc::_exit(code)
        }
    }
}

/// `prctl(2)` with one argument; the unused ones are passed as full-width zeros, which
/// some options require.
///
/// # Safety
/// A plain system call.
unsafe fn prctl(option: libc::c_int, arg: libc::c_ulong) -> libc::c_int {
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl(2) takes unsigned long arguments; all are passed at that width.
    unsafe { libc::prctl(option, arg, zero, zero, zero) }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `data` to the file at `path` with one `write(2)` (procfs map files take one).
///
/// # Safety
/// Only system calls; callable in a forked child.
unsafe fn write_all(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and `data` valid for its length.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written < 0 || written as usize != data.len() {
            return Err(error);
        }
    }
    Ok(())
}

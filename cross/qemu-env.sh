# Sourced by the cross/ scripts: the emulator that cross/setup-host.sh unpacks, and its binfmt_misc
# registration.
#
# Emulated programs get no `-L`/QEMU_LD_PREFIX: the aarch64 ELF's interpreter /lib/ld-linux-aarch64.so.1
# and the libraries it loads then all come from the multiarch packages (libc6:arm64 ...). Pointing qemu
# at the cross toolchain's /usr/aarch64-linux-gnu pairs that ld.so with the multiarch libc.so.6 (another
# build of glibc 2.36), and pthread_create spins forever (cross/README.md, "Why threads hung").
export SOTTO_QEMU_DIR="${SOTTO_QEMU_DIR:-$HOME/.cache/sotto/qemu}"
export SOTTO_QEMU_AARCH64="${SOTTO_QEMU_AARCH64:-$SOTTO_QEMU_DIR/usr/bin/qemu-aarch64}"
unset QEMU_LD_PREFIX

qemu_binfmt_dir=/proc/sys/fs/binfmt_misc
qemu_binfmt_name=sotto-qemu-aarch64

# Registers qemu for aarch64 ELFs with binfmt_misc (root), so the kernel runs them directly: the
# daemon's execve of its workers then works as on a board. Flags: P keeps argv[0] (qemu is called
# through its `*-binfmt-P` name, which tells it so), O hands qemu the open binary, F opens the
# interpreter now, so it is found from any mount namespace.
#
# Several runs may overlap (two parity.py at once): each holds a shared flock on $qemu_binfmt_users
# while it runs, and only the last one out (the one that gets it exclusively) removes the
# registration, and the binfmt_misc mount if one of these runs made it. $qemu_binfmt_mutex keeps a
# registration and a removal from interleaving. Without this, the first run to finish unregistered
# qemu under the others, and their next execve of an aarch64 worker failed (the worker "died while
# loading the model (exit status 127)").
qemu_binfmt_users=/run/lock/sotto-qemu-binfmt.users
qemu_binfmt_mutex=/run/lock/sotto-qemu-binfmt.mutex
qemu_binfmt_mounted_mark=/run/lock/sotto-qemu-binfmt.mounted

qemu_binfmt_up() {
  local interp="$SOTTO_QEMU_DIR/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
  [[ -x "$interp" ]] || { echo "$interp missing: run cross/setup-host.sh" >&2; return 1; }
  [[ $EUID -eq 0 ]] || { echo "registering qemu with binfmt_misc needs root" >&2; return 1; }
  local mutex
  exec {mutex}>"$qemu_binfmt_mutex"
  flock -x "$mutex"
  if [[ ! -e "$qemu_binfmt_dir/register" ]]; then
    mount -t binfmt_misc binfmt_misc "$qemu_binfmt_dir" || { echo "cannot mount binfmt_misc" >&2; return 1; }
    : > "$qemu_binfmt_mounted_mark"
  fi
  if [[ ! -e "$qemu_binfmt_dir/$qemu_binfmt_name" ]]; then
    # ELF64, little endian, ET_EXEC or ET_DYN (mask 0xfe), e_machine 0xb7 (AArch64).
    local magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    printf ':%s:M::%s:%s:%s:POF' "$qemu_binfmt_name" "$magic" "$mask" "$interp" > "$qemu_binfmt_dir/register"
  fi
  exec {qemu_binfmt_fd}>"$qemu_binfmt_users"
  flock -s "$qemu_binfmt_fd"
  exec {mutex}>&-
  trap qemu_binfmt_down EXIT
}

qemu_binfmt_down() {
  [[ -n "${qemu_binfmt_fd:-}" ]] || return 0
  local mutex
  exec {mutex}>"$qemu_binfmt_mutex"
  flock -x "$mutex"
  if flock -x -n "$qemu_binfmt_fd"; then   # no other run holds it: the last one out cleans up
    if [[ -e "$qemu_binfmt_dir/$qemu_binfmt_name" ]]; then echo -1 > "$qemu_binfmt_dir/$qemu_binfmt_name" || true; fi
    if [[ -e "$qemu_binfmt_mounted_mark" ]]; then umount "$qemu_binfmt_dir" || true; rm -f "$qemu_binfmt_mounted_mark"; fi
  fi
  exec {qemu_binfmt_fd}>&- {mutex}>&-
  unset qemu_binfmt_fd
}

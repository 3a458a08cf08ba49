import { WORKSPACE_ROOT } from './paths.js';

/**
 * The shell scripts of the per-call exec fallback (exec-transport.ts). The ones run as root
 * (identity, cancel-task, cleanup) keep the same records as the runner (runner/sandbox_runner/
 * identity.py): the owner of /workspace/<task> is the task's uid, `.research/uids/<uid>` a claim
 * made with an atomic `ln -s`, so containers on one volume agree whichever transport they use.
 * The others run as the task's uid. Needs GNU coreutils/findutils.
 */

/** Exit status by which the scripts say "refused"; stderr then holds `<mark>code\nmessage`. */
export const REFUSED = 90;
export const REFUSED_MARK = 'sandbox-refused:';
/** Exit status of execute-command when the command took the task past its disk quota. */
export const OVER_QUOTA = 91;
export const QUOTA_MARK = 'sandbox-quota:';
export const HOMES = '/tmp/research-home';

const REFUSE = `refuse() { printf '${REFUSED_MARK}%s\\n%s' "$1" "$2" >&2; exit ${REFUSED}; }`;

/** kill_uid <uid>: SIGKILLs every live process of the uid, sweeping until none is left. */
const KILL_UID = `
kill_uid() {
  n=0
  while [ $n -lt 50 ]; do
    found=0
    for s in /proc/[0-9]*/status; do
      p=\${s#/proc/}; p=\${p%/status}
      st=""; id=""
      while read -r k a _rest; do
        case "$k" in State:) st=$a;; Uid:) id=$a; break;;esac
      done < "$s" 2>/dev/null
      [ "$id" = "$1" ] && [ "$st" != Z ] && kill -KILL "$p" 2>/dev/null && found=1
    done
    [ $found = 0 ] && return 0
    n=$((n + 1)); sleep 0.005
  done
}`;

export const ROOT_SCRIPTS = {
  /** args: task first count runnerUid create(0|1) → `uid=<n>` (empty when missing and not created). */
  identity: `
set -u
${REFUSE}
task="$1"; first="$2"; count="$3"; r="$4"; create="$5"
d=${WORKSPACE_ROOT}/$task; claims=${WORKSPACE_ROOT}/.research/uids; hint=${WORKSPACE_ROOT}/.research/next-uid
mkdir -p "$claims"
inrange() { [ "$1" -ge "$first" ] && [ "$1" -lt $((first + count)) ]; }
claim() {
  start=$(cat "$hint" 2>/dev/null || od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  start=$((start % count)); i=0
  while [ $i -lt 200000 ]; do
    off=$(((start + i) % count)); u=$((first + off))
    if ln -s "$task" "$claims/$u" 2>/dev/null; then
      echo $(((off + 1) % count)) > "$hint.$$" && mv -f "$hint.$$" "$hint"
      echo "$u"; return 0
    fi
    i=$((i + 1))
  done
  return 1
}
home() {
  mkdir -p ${HOMES} && chown "$r:$r" ${HOMES} && chmod 711 ${HOMES}
  [ -d ${HOMES}/"$task" ] || { mkdir -m 700 ${HOMES}/"$task" && chown "$1:$1" ${HOMES}/"$task"; }
  echo "uid=$1"; exit 0
}
n=0
while [ $n -lt 400 ]; do
  n=$((n + 1))
  [ -L "$d" ] && refuse path_outside_workspace "the task directory is not a directory (replaced by a symlink?)"
  if [ -d "$d" ]; then
    o=$(stat -c %u "$d")
    if inrange "$o"; then chmod 700 "$d"; home "$o"; fi
    if [ "$o" = "$r" ] && [ $(($(date +%s) - $(stat -c %Y "$d"))) -lt 30 ]; then sleep 0.01; continue; fi
    u=$(claim) || refuse resource_exhausted "no free task uid"
    chown -R -h "$u:$u" "$d" && chmod 700 "$d"; home "$u"
  fi
  [ -e "$d" ] && refuse path_outside_workspace "the task directory is not a directory"
  [ "$create" = 1 ] || { echo "uid="; exit 0; }
  u=$(claim) || refuse resource_exhausted "no free task uid"
  if mkdir -m 700 "$d" 2>/dev/null; then chown "$u:$u" "$d"; home "$u"; fi
  rm -f "$claims/$u"
done
refuse io_error "the task directory did not become ready"
`,
  /** args: task — bytes of disk the task's directory and home use. */
  usage: `du -s -c -B1 -- ${WORKSPACE_ROOT}/"$1" ${HOMES}/"$1" 2>/dev/null | tail -n 1 | cut -f1
`,
  /** args: uid — kills every process of the task's uid. */
  'cancel-task': `${KILL_UID}
kill_uid "$1"
exit 0
`,
  /**
   * args: maxAgeSeconds first count [task] → how many task directories were removed. With a task,
   * only its directory, whatever its age (the task was deleted).
   */
  cleanup: `${KILL_UID}
now=$(date +%s); n=0; first="$2"; count="$3"; only="\${4:-}"
if [ -n "$only" ]; then set -- "$1" "$2" "$3" ${WORKSPACE_ROOT}/"$only"; else set -- "$1" "$2" "$3" ${WORKSPACE_ROOT}/* ${WORKSPACE_ROOT}/.[!.]*; fi
age="$1"; shift 3
for d in "$@"; do
  name=\${d##*/}
  case "$name" in ''|*[!A-Za-z0-9_-]*) continue;; esac
  [ -e "$d" ] || [ -L "$d" ] || continue
  m=$(stat -c %Y -- "$d") || continue
  if [ -n "$only" ] || [ $((now - m)) -ge "$age" ]; then
    u=$(stat -c %u -- "$d")
    [ "$u" -ge "$first" ] && [ "$u" -lt $((first + count)) ] && kill_uid "$u"
    rm -rf -- "$d" ${HOMES}/"$name" && n=$((n + 1))
    c=${WORKSPACE_ROOT}/.research/uids/$u
    [ "$(readlink "$c" 2>/dev/null)" = "$name" ] && rm -f "$c"
  fi
done
echo $n
`,
} as const;

/**
 * The checks every file action shares: the task directory must be a real directory and the
 * target, symlinks resolved (`realpath -m` resolves the existing prefix of a new path), must
 * stay inside it. Run as the task's uid, so it cannot reach further than the task anyway.
 */
const PRELUDE = `
set -u
${REFUSE}
inside() { case "$1" in "$base"|"$base"/*) return 0;; *) return 1;; esac; }
task="$1"; target="$2"; shown="$3"; quota="$4"
base=${WORKSPACE_ROOT}/$task
if [ -L "$base" ] || [ ! -d "$base" ]; then refuse path_outside_workspace "the task directory is not a directory"; fi
touch -c "$base"
real=$(realpath -m -- "$target") || refuse io_error "cannot resolve $shown"
inside "$real" || refuse path_outside_workspace "$shown resolves outside the task directory through a symlink"
used() { du -s -c -B1 -- "$base" ${HOMES}/"$task" 2>/dev/null | tail -n 1 | cut -f1; }
`;

export const TASK_SCRIPTS = {
  /** args: …prelude, bytes of content; stdin: the content. */
  'create-file': `${PRELUDE}
[ "$real" = "$base" ] && refuse is_directory "$shown is the task directory"
[ -d "$real" ] && refuse is_directory "$shown is a directory"
parent=$(dirname -- "$real")
mkdir -p -- "$parent" 2>/dev/null || refuse not_a_directory "a parent of $shown is a file"
inside "$(realpath -m -- "$parent")" || refuse path_outside_workspace "$shown resolves outside the task directory through a symlink"
if [ "$quota" -gt 0 ]; then
  old=0; [ -f "$real" ] && old=$(du -B1 -- "$real" | cut -f1)
  after=$(($(used) - old + ($5 + 4095) / 4096 * 4096))
  [ "$after" -gt "$quota" ] && refuse disk_quota_exceeded "writing $shown ($5 bytes) would take the task to $((after / 1048576)) MB, past its disk quota of $((quota / 1048576)) MB"
fi
if [ -e "$real" ]; then echo overwritten; else echo created; fi
cat > "$real" || refuse io_error "cannot write $shown"
`,
  /** args: …prelude, bytes to read. */
  'read-file': `${PRELUDE}
[ -e "$real" ] || refuse not_found "$shown does not exist"
[ -d "$real" ] && refuse is_directory "$shown is a directory; use list-files"
[ -f "$real" ] || refuse not_a_file "$shown is not a regular file"
stat -c %s -- "$real"
head -c "$5" -- "$real"
`,
  /** args: …prelude, depth, entries. */
  'list-files': `${PRELUDE}
[ -e "$real" ] || refuse not_found "$shown does not exist"
if [ ! -d "$real" ]; then printf 'f %s \\0' "$(stat -c %s -- "$real")"; exit 0; fi
cd "$real" && find . -mindepth 1 -maxdepth "$5" -printf '%y %s %P\\0' | sort -z -k3 | head -z -n "$6"
`,
  /** args: …prelude, timeout seconds, command. */
  'execute-command': `${PRELUDE}
[ -d "$real" ] || refuse not_found "cwd $shown is not an existing directory"
cd "$real" || exit 126
sh=/bin/sh; [ -x /bin/bash ] && sh=/bin/bash
before=0
if [ "$quota" -gt 0 ]; then
  before=$(used); left=$((quota - before)); [ $left -lt 0 ] && left=0
  ulimit -f $((left / 512))
fi
umask 077
# timeout(1) makes its own process group and SIGKILLs all of it at the deadline.
timeout -s KILL "$5" "$sh" -c "$6" </dev/null
rc=$?
if [ "$quota" -gt 0 ]; then
  after=$(used)
  if [ $rc = 153 ] || { [ "$after" -ge "$quota" ] && [ $((after - before)) -gt 65536 ]; }; then
    printf '\\n${QUOTA_MARK}%s' "$after" >&2; exit ${OVER_QUOTA}
  fi
fi
exit $rc
`,
} as const;

/**
 * What one task's commands try against another task running at the same time, and against the
 * runner: read and replace its files, find its processes (by /proc/<pid>/cwd, as an attacker
 * would, and by the command line anyone may read) and kill them, look into their
 * /proc/<pid>/{fd,environ,cwd} and the runner's, write forged replies into the runner's stdout
 * (the reply channel to the worker) and kill the runner — each against every process of the
 * runner's command line (the runner and its shell starter). Prints one `key=value` line per
 * attempt.
 * The sandbox's tests run it through the sandbox API, the system tests through the real API.
 */
export function attackScript(victim: string): string {
  return `V=${victim}
cat /workspace/$V/secret.txt >/dev/null 2>&1 && echo read=ok || echo read=denied
(echo FORGED > /workspace/$V/secret.txt) 2>/dev/null && echo write=ok || echo write=denied
found=0; killed=0
for d in /proc/[0-9]*; do
  p=\${d#/proc/}; [ "$p" = $$ ] && continue
  case "$(readlink $d/cwd 2>/dev/null)" in /workspace/$V|/workspace/$V/*)
    found=$((found + 1)); kill -9 "$p" 2>/dev/null && killed=$((killed + 1));;
  esac
done
echo "cwd-targets=$found cwd-killed=$killed"
found=0; killed=0; peeked=0
for d in /proc/[0-9]*; do
  p=\${d#/proc/}
  case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in "sleep 1029"*)
    found=$((found + 1))
    { ls $d/fd || cat $d/environ || readlink $d/cwd; } >/dev/null 2>&1 && peeked=$((peeked + 1))
    kill -9 "$p" 2>/dev/null && killed=$((killed + 1));;
  esac
done
echo "cmdline-targets=$found cmdline-killed=$killed peeked=$peeked"
RS=""
for d in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in *opt/research/runner*) RS="$RS \${d#/proc/}";; esac
done
echo "runner-found=$([ -n "$RS" ] && echo yes || echo no)"
forged='{"ok":true,"result":{"action":"execute-command","exitCode":0,"stdout":"FORGED","stderr":"","timedOut":false,"truncated":false,"durationMs":1}}'
fd=denied; environ=denied; forge=denied; rkill=denied
for R in $RS; do
  ls /proc/$R/fd >/dev/null 2>&1 && fd=ok
  cat /proc/$R/environ >/dev/null 2>&1 && environ=ok
  { for i in $(seq 1 3000); do printf '{"id":%d,%s\\n' "$i" "\${forged#\\{}"; done > /proc/$R/fd/1; } 2>/dev/null && forge=ok
done
for R in $RS; do kill -9 "$R" 2>/dev/null && rkill=ok; done
echo "runner-fd=$fd"
echo "runner-environ=$environ"
echo "forge=$forge"
echo "runner-kill=$rkill"`;
}

/**
 * The victim's command: runs (a marked `sleep 1029` beside it, for the attack to find) until the
 * test creates `release` in its directory, at most 90 s; then prints its `secret.txt`.
 */
export const VICTIM_COMMAND =
  'sleep 1029 & for i in $(seq 1 900); do [ -e release ] && break; sleep 0.1; done; kill %1 2>/dev/null; cat secret.txt';

/**
 * What `attackScript` prints when every attempt is refused. `victimVisible`: whether the victim's
 * processes are in the attacker's view at all (they share a container); in another container
 * the attack does not even find them.
 */
export function attacksDenied(victimVisible: boolean): string[] {
  return [
    'read=denied',
    'write=denied',
    'cwd-targets=0 cwd-killed=0',
    `cmdline-targets=${victimVisible ? 1 : 0} cmdline-killed=0 peeked=0`,
    'runner-found=yes',
    'runner-fd=denied',
    'runner-environ=denied',
    'forge=denied',
    'runner-kill=denied',
  ];
}

/** `grep -E "^(Cap|NoNewPrivs)" /proc/self/status` of a task's command: no capability in any set, no-new-privileges. */
export const NO_CAPABILITIES = [
  'CapInh:\t0000000000000000',
  'CapPrm:\t0000000000000000',
  'CapEff:\t0000000000000000',
  'CapBnd:\t0000000000000000',
  'CapAmb:\t0000000000000000',
  'NoNewPrivs:\t1',
];

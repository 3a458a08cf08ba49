// Preloaded (`node --expose-gc --import …/gc-hook.js`) into the processes the bench spawns, so
// the memory part can collect garbage in them before reading their RSS: SIGUSR2 → gc().
// SIGUSR1 belongs to the inspector; nothing in the apps uses SIGUSR2.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) process.on('SIGUSR2', () => gc());

#!/usr/bin/env node
// A committed launcher: npm links a workspace's bin at install time only if the file exists then,
// and dist/ is built after install on a fresh clone.
try {
  await import('../dist/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('research: the CLI is not built yet; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
}

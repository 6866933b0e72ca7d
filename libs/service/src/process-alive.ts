/** Whether a process of this host with that id exists (signal 0 probes without signalling): what the start-up sweeps ask of the owners their leftovers name. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits until `what` holds (it may ask over the network or read files: it may be async), looking again every
 * `everyMs`; past `ms`, throws `timed out: <why>`.
 */
export async function until(what: () => boolean | Promise<boolean>, ms: number, why: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

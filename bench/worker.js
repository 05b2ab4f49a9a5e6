// The workerd side of the benchmark (Miniflare, started by bench/run.mjs): imports the package's workerd entry point
// and runs the job POSTed to it. workerd's clocks (Date.now, performance.now) only advance across I/O, so the clock
// used for timing first makes a tiny loopback request (GET /tick) and then reads Date.now(): each timed run is
// bracketed by I/O and its time includes all CPU work between the two ticks (~0.1-0.3 ms of tick overhead each).
// CPU time: the loopback server reads the workerd process's from /proc (GET /cpu), around each run.
import * as api from '../dist/entrypoints/workerd.js';
import { BYOB_BYTES } from '../dist/reader/body.js';
import { runVariant } from './workloads.js';

/** Runs the POSTed job. */
export async function handle(request) {
  if (request.method !== 'POST') return new Response('POST a job\n', { status: 405 });
  const job = await request.json();
  try {
    const clock = async () => {
      await (await fetch(`${job.base}/tick`)).text();
      return Date.now();
    };
    const cpu = async () => (await (await fetch(`${job.base}/cpu`)).json()) ?? undefined;
    // feedpump reads byte streams here with BYOB reads of BYOB_BYTES (js/src/entrypoints/workerd.ts): so does the floor.
    return Response.json(await runVariant(api, { ...job, clock, cpu, byob: BYOB_BYTES }));
  } catch (e) {
    return Response.json({ workerError: String((e && e.stack) || e) }, { status: 500 });
  }
}

export default {
  fetch: (request) => handle(request, undefined),
};

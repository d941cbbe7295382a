/**
 * Imported first by the worker entry (./worker.ts), so it holds from the worker's first moment.
 *
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group, the job workers
 * included. The process that started a worker decides what a Ctrl-C means: the queue holder
 * cancels its jobs, which reaches the worker as a `cancel` message, so the job ends cancelled
 * with its run saved. A worker dying of the SIGINT itself would turn that into an interrupted
 * (crashed) job. A worker whose parent does die sees its channel close (the study and tune
 * kinds then exit); SIGTERM (Slurm's requeue) and SIGKILL still end it as before.
 */
process.on('SIGINT', () => undefined);

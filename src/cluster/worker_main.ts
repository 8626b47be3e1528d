/** Entry point of a cluster worker (`workers: N`); the primary forks it and sends its config. */
import { runWorker } from './worker.js';

void runWorker();

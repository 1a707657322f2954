// Worker thread of knnParallel: search one contiguous range of queries into the shared heaps.

import { parentPort, workerData } from 'node:worker_threads';
import { searchRange } from './knn_kernel.js';
import type { SearchState } from './knn_kernel.js';

const { st, q0, q1 } = workerData as { st: SearchState; q0: number; q1: number };
searchRange(st, q0, q1);
parentPort!.postMessage('done');

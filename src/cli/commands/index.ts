import type { Command } from '../command';
import { serveCommand } from './serve';
import { doctorCommand } from './doctor';
import { projectCommand } from './project';
import { spectrumCommand } from './spectrum';
import { noiseCommand } from './noise';
import { tuneCommand } from './tune';
import { pretrainCommand } from './pretrain';
import { datasetCommand } from './dataset';
import { featuresCommand } from './features';
import { runCommand } from './run';
import { runsCommand } from './runs';
import { experimentCommand } from './experiment';
import { demoCommand } from './demo';
import { reportCommand } from './report';
import { workerCommand } from './worker';
import { finetuneCommand } from './finetune';

/** Every verb of `nmlab`, in the order `nmlab help` lists them. */
export const commands: Command[] = [demoCommand, projectCommand, doctorCommand, serveCommand, spectrumCommand, noiseCommand, tuneCommand, finetuneCommand, pretrainCommand, datasetCommand, featuresCommand, runCommand, runsCommand, experimentCommand, reportCommand, workerCommand];

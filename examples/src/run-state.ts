/**
 * What a recipe run has finished: `runs/<name>/state.json`, rewritten atomically after each phase.
 * Re-running the recipe skips phases recorded here (their outputs are on disk); a phase that was
 * interrupted is re-run, and the trainer resumes it from its latest checkpoint.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '@cllama/core';
import path from 'node:path';

export interface PhaseRecord {
  seconds: number;
  finishedAt: string;
  results: Record<string, unknown>;
}

export interface RunState {
  version: 1;
  preset: string;
  backend?: string;
  phases: Record<string, PhaseRecord>;
}

export class RunStateStore {
  readonly file: string;
  state: RunState;

  constructor(runDir: string, preset: string) {
    this.file = path.join(runDir, 'state.json');
    if (existsSync(this.file)) {
      const loaded = JSON.parse(readFileSync(this.file, 'utf8')) as RunState;
      if (loaded.preset !== preset) {
        throw new Error(
          `${runDir} was started with --preset ${loaded.preset}, not ${preset}: pass --name <other> for a new run, or --fresh to start this one over`,
        );
      }
      this.state = loaded;
    } else {
      this.state = { version: 1, preset, phases: {} };
    }
  }

  done(phase: string): PhaseRecord | undefined {
    return this.state.phases[phase];
  }

  record(phase: string, seconds: number, results: Record<string, unknown>): PhaseRecord {
    const rec = { seconds, finishedAt: new Date().toISOString(), results };
    this.state.phases[phase] = rec;
    this.save();
    return rec;
  }

  save(): void {
    writeFileAtomicSync(this.file, `${JSON.stringify(this.state, null, 2)}\n`);
  }
}

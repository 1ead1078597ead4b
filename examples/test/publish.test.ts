// The public API of every package, checked against what users get: each package is packed with
// `npm pack`, installed from the tarballs into a scratch project outside the workspace, and imported
// ONLY from there, as ESM and as CJS, with types. The exported values must be exactly the curated list
// below (an internal that starts being exported, or a public name that disappears, fails the test), the
// listed types must resolve, and each CLI must answer --help from node_modules/.bin.
//
// Changing the public API of a package means changing its list here, its src/index.ts and its README.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

/** The curated public API: every exported value (exactly), and some exported types (at least). */
const PACKAGES: Record<string, { dir: string; bin: string | undefined; values: string[]; types: string[] }> = {
  '@cllama/core': {
    dir: 'packages/core',
    bin: undefined,
    values: [
      'AtomicFileWriter',
      'CllamaError',
      'EXIT_FAILURE',
      'EXIT_INCOMPLETE',
      'EXIT_INTERRUPTED',
      'EXIT_OK',
      'EXIT_USAGE',
      'FolderExistsError',
      'Mulberry32',
      'UsageError',
      'WriteError',
      'Xoshiro128',
      'copyFileAtomic',
      'defineCommand',
      'errorLine',
      'fsErrorReason',
      'fsyncDir',
      'hashString',
      'integerFlag',
      'mulberry32',
      'numberFlag',
      'parseFiniteNumber',
      'parseWholeNumber',
      'realTarget',
      'refuseSpecialFile',
      'runCli',
      'runMain',
      'tempSibling',
      'writeFileAtomic',
      'writeFileAtomicSync',
      'writeFolderAtomic',
    ],
    types: ['RngState', 'FileContent', 'CliProgram', 'RunCliOptions', 'CommandDef', 'ArgsDef', 'CommandContext', 'FlagRange'],
  },
  '@cllama/tokenizer-merge': {
    dir: 'packages/tokenizer-merge',
    bin: 'cllama-tokenizer',
    values: [
      'EncoderModelError',
      'MergeInputError',
      'ModelFormatError',
      'ModelType',
      'NORMALIZER_SPEC_DEFAULTS',
      'PACKAGE_NAME',
      'PieceType',
      'SentencePieceEncoder',
      'SentencePieceTokenizer',
      'TRAINER_SPEC_DEFAULTS',
      'TokenizerMergeError',
      'TrainError',
      'buildHfTokenizerFiles',
      'buildTokenizerJson',
      'compareModels',
      'createPiece',
      'createSentencePieceTokenizer',
      'inspectModel',
      'loadTokenizer',
      'measureAgreement',
      'mergeTokenizers',
      'mergeVocab',
      'mergeVocabWithStats',
      'modelTypeName',
      'parseModelProto',
      'pieceTypeName',
      'readHfAddedTokens',
      'readModelProto',
      'resolveModelPath',
      'serializeModelProto',
      'trainSentencePiece',
      'unreachablePieces',
      'validateModelProto',
      'writeTrainedModel',
    ],
    types: ['ModelProto', 'Tokenizer', 'MergeTokenizerResult', 'TrainSentencePieceOptions', 'HfTokenizerFiles'],
  },
  '@cllama/lora': {
    dir: 'packages/lora',
    bin: 'cllama-lora',
    values: [
      'ADAPTER_CONFIG_NAME',
      'ADAPTER_WEIGHTS_NAME',
      'CheckpointError',
      'HFCheckpoint',
      'INDEX_FILE_NAME',
      'LlamaConfigError',
      'LoraError',
      'MergeError',
      'PACKAGE_NAME',
      'PEFT_KEY_PREFIX',
      'PeftAdapter',
      'PeftError',
      'SINGLE_FILE_NAME',
      'SafetensorsError',
      'SafetensorsFile',
      'SafetensorsStreamWriter',
      'TOKENIZER_FILES',
      'countTrainableParameters',
      'createLlamaConfig',
      'headDim',
      'initLoraPair',
      'loraScaling',
      'loraTargets',
      'matchesModulesToSave',
      'matchesTargetModule',
      'mergeAdaptersIntoCheckpoint',
      'mergeLora',
      'parseLlamaConfig',
      'parseLoraConfig',
      'parsePeftKey',
      'peftFullKey',
      'peftLoraKeys',
      'readLlamaConfig',
      'readPeftAdapter',
      'readSafetensorsHeader',
      'saveHFCheckpoint',
      'unmergeLora',
      'writeLlamaConfig',
      'writePeftAdapter',
      'writeSafetensors',
    ],
    types: ['LlamaConfig', 'LoraConfig', 'SafetensorsTensorInfo', 'MergeOptions', 'SaveHFCheckpointOptions'],
  },
  '@cllama/trainer': {
    dir: 'packages/trainer',
    bin: 'cllama-train',
    values: [
      'AdamW',
      'AdapterError',
      'BACKEND_CHOICES',
      'BackendError',
      'DataParallel',
      'DataParallelError',
      'IGNORE_INDEX',
      'KVCache',
      'LaunchError',
      'LlamaModel',
      'LrSchedule',
      'ModelError',
      'OptimizerStateError',
      'OutputDirNotEmptyError',
      'PACKAGE_NAME',
      'SCHEDULER_TYPES',
      'ScheduleError',
      'TrainConfigError',
      'TrainDataError',
      'TrainLoopError',
      'TrainSessionError',
      'TrainerError',
      'TrainingCheckpointError',
      'activeBackend',
      'attachLoraFromDir',
      'decoderLayerOnnx',
      'defaultArgs',
      'describeBackend',
      'dryRunPlan',
      'emitLaunchFolder',
      'evaluate',
      'formatPlan',
      'initBackend',
      'latestCheckpoint',
      'listCheckpoints',
      'llamaWeightShapes',
      'loadLlama',
      'loopModel',
      'preparePretrainData',
      'prepareSftData',
      'readMetrics',
      'readTrainerState',
      'renderTrainingPlot',
      'resizedEmbeddingRows',
      'resolveArgs',
      'runTrainingLoop',
      'runTrainingSession',
      'saveLlama',
      'scoreBatches',
      'scoreTokenBlocks',
      'textToBlocks',
      'warmupStepsFor',
      'webgpuAdapter',
    ],
    types: ['LlamaConfig', 'TrainArgs', 'LoopResult', 'SessionResult', 'BackendChoice', 'BackendFacts'],
  },
  '@cllama/alpaca-data': {
    dir: 'packages/alpaca-data',
    bin: 'cllama-data',
    values: [
      'AlpacaDataError',
      'CONVERTERS',
      'DEFAULT_MAX_RECORD_BYTES',
      'DEFAULT_MAX_SEQ_LENGTH',
      'DROP_REASONS',
      'IGNORE_INDEX',
      'InputFormatError',
      'PACKAGE_NAME',
      'REFERENCE_TEMPLATE',
      'REFUSAL_PHRASES',
      'RecordError',
      'STANFORD_ALPACA_TEMPLATE',
      'TEMPLATES',
      'TOKENIZED_FORMAT',
      'TOKENIZED_VERSION',
      'TokenizedDatasetError',
      'UsageError',
      'alpacaFileStats',
      'buildPretrainBlocks',
      'buildSftExample',
      'checkAlpacaRecord',
      'cleaningReason',
      'collate',
      'convertFile',
      'formatMixReport',
      'formatPrompt',
      'makeConverter',
      'mixSources',
      'openTokenizedDataset',
      'parseSourceSpec',
      'readAlpacaRecords',
      'readJsonRecords',
      'readTextLines',
      'resolveTemplate',
      'tokenizeFiles',
      'tokenizedStats',
      'writeTokenizedDataset',
    ],
    types: ['AlpacaRecord', 'SftExample', 'TokenizedDataset', 'MixReport', 'Batch'],
  },
  '@cllama/prompt-crawler': {
    dir: 'packages/prompt-crawler',
    bin: 'cllama-crawl',
    values: [
      'CHINESE_BLACKLIST',
      'ConfigError',
      'CrawlerError',
      'EN_TASKS',
      'EN_TEMPLATE',
      'EN_TOPICS',
      'FatalApiError',
      'LockedError',
      'OutputFileError',
      'PACKAGE_NAME',
      'RougeLIndex',
      'STANFORD_BLACKLIST',
      'TooManyFailuresError',
      'ZH_TASKS',
      'ZH_TEMPLATE',
      'ZH_TOPICS',
      'buildPrompt',
      'crawl',
      'defaultFilterOptions',
      'defaultPromptSpec',
      'parseListFile',
      'parseReply',
    ],
    types: ['CrawlOptions', 'CrawlSummary', 'PromptSpec', 'Item', 'RetryPolicy'],
  },
};

let work: string;
let scratch: string;

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'cllama-pack-'));
  const tarballs = Object.values(PACKAGES).map(({ dir }) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', work], path.join(repoRoot, dir));
    const [{ filename }] = JSON.parse(out) as Array<{ filename: string }>;
    return path.join(work, filename);
  });
  scratch = path.join(work, 'scratch');
  execFileSync('mkdir', ['-p', scratch]);
  writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true }, null, 2));
  // Dependencies come from the npm registry (or npm's cache), the @cllama packages from the tarballs.
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], scratch);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack → install in a scratch project outside the workspace', () => {
  it('tarballs hold only the built files (and the bin shims)', () => {
    for (const [name, { bin }] of Object.entries(PACKAGES)) {
      const pkgDir = path.join(scratch, 'node_modules', name);
      const files = readdirSync(pkgDir).sort();
      expect(files).toContain('dist');
      expect(files).toContain('package.json');
      expect(files).toContain('README.md');
      expect(files).not.toContain('src');
      expect(files).not.toContain('test');
      if (bin) expect(readdirSync(path.join(pkgDir, 'bin'))).toEqual([`${bin}.js`]);
    }
  });

  it('exports exactly the curated values as ESM', () => {
    const lines = Object.keys(PACKAGES).map((name, i) => `import * as m${i} from '${name}';\nout[${JSON.stringify(name)}] = Object.keys(m${i}).sort();`);
    writeFileSync(path.join(scratch, 'check.mjs'), `const out = {};\n${lines.join('\n')}\nconsole.log(JSON.stringify(out));\n`);
    const got = JSON.parse(run('node', ['check.mjs'], scratch)) as Record<string, string[]>;
    for (const [name, { values }] of Object.entries(PACKAGES)) expect(got[name], name).toEqual([...values].sort());
  });

  it('exports exactly the curated values as CJS', () => {
    const lines = Object.keys(PACKAGES).map(
      (name) => `out[${JSON.stringify(name)}] = Object.keys(require('${name}')).filter((k) => k !== '__esModule').sort();`,
    );
    writeFileSync(path.join(scratch, 'check.cjs'), `const out = {};\n${lines.join('\n')}\nconsole.log(JSON.stringify(out));\n`);
    const got = JSON.parse(run('node', ['check.cjs'], scratch)) as Record<string, string[]>;
    for (const [name, { values }] of Object.entries(PACKAGES)) expect(got[name], name).toEqual([...values].sort());
  });

  it('type-checks against the shipped declarations (ESM and CJS resolution)', () => {
    const imports = Object.entries(PACKAGES)
      .map(
        ([name, { values, types }], i) =>
          `import * as m${i} from '${name}';\nimport type { ${types.map((t) => `${t} as T${i}_${t}`).join(', ')} } from '${name}';\n` +
          `void [${values.map((e) => `m${i}.${e}`).join(', ')}];\n` +
          `export type T${i} = [${types.map((t) => `T${i}_${t}`).join(', ')}];`,
      )
      .join('\n');
    writeFileSync(path.join(scratch, 'check-esm.mts'), `${imports}\n`);
    writeFileSync(path.join(scratch, 'check-cjs.cts'), `${imports}\n`);
    // A deliberately wrong use must fail, so a missing .d.ts (everything `any`) cannot pass silently.
    writeFileSync(
      path.join(scratch, 'wrong.mts'),
      `import { mergeVocab } from '@cllama/tokenizer-merge';\nconst x: { definitelyNotThere: 1 } = mergeVocab;\nvoid x;\n`,
    );
    // An internal is not reachable through the types either.
    writeFileSync(path.join(scratch, 'internal.mts'), `import { scatterAddRows } from '@cllama/trainer';\nvoid scatterAddRows;\n`);
    const tsc = require.resolve('typescript/bin/tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--skipLibCheck',
      '--types',
      'node',
      '--typeRoots',
      path.join(repoRoot, 'node_modules/@types'),
    ];
    run('node', [tsc, ...flags, 'check-esm.mts', 'check-cjs.cts'], scratch);
    expect(() => run('node', [tsc, ...flags, 'wrong.mts'], scratch)).toThrow(/TS2322|TS2741|TS2739|TS2559/);
    expect(() => run('node', [tsc, ...flags, 'internal.mts'], scratch)).toThrow(/TS2305|TS2724/);
  });

  it('each CLI answers --help from node_modules/.bin', () => {
    for (const [name, { bin }] of Object.entries(PACKAGES)) {
      const version = JSON.parse(readFileSync(path.join(scratch, 'node_modules', name, 'package.json'), 'utf8')).version;
      expect(version).toMatch(/^\d+\.\d+\.\d+/);
      if (!bin) continue;
      const out = run(path.join(scratch, 'node_modules/.bin', bin), ['--help'], scratch);
      expect(out).toMatch(/Usage/i);
    }
  });
});

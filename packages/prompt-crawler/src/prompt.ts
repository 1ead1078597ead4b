/**
 * Self-instruct prompt generation, following the structure of Chinese-LLaMA-Alpaca's crawl_prompt.py:
 * a request asks for N JSON items; it names 10 topics sampled from ~80 and 10 task types sampled from
 * 14, and random length limits for <input> (80–120 characters) and <output> (128–512 characters).
 * The wording here is this project's own; the lists and template can be replaced from files.
 */
import { randInt, requestRng, sample } from './rng.js';

export type PromptLanguage = 'zh' | 'en';

export const ZH_TOPICS: readonly string[] = [
  '科技',
  '娱乐',
  '体育',
  '金融',
  '时政',
  '教育',
  '医疗',
  '旅游',
  '美食',
  '汽车',
  '房产',
  '文化',
  '历史',
  '地理',
  '自然',
  '人文',
  '社会',
  '法律',
  '军事',
  '政治',
  '经济',
  '文学',
  '艺术',
  '宗教',
  '哲学',
  '语言',
  '数学',
  '物理',
  '化学',
  '生物',
  '地球科学',
  '天文学',
  '计算机科学',
  '工程',
  '建筑',
  '设计',
  '音乐',
  '舞蹈',
  '电影',
  '电视',
  '动漫',
  '游戏',
  '健康',
  '美容',
  '时尚',
  '家居',
  '家电',
  '家具',
  '装修',
  '母婴',
  '育儿',
  '职场',
  '工作',
  '生活',
  '养生',
  '心理',
  '情感',
  '人际关系',
  '社交',
  '交友',
  '恋爱',
  '婚姻',
  '家庭',
  '亲子',
  '宠物',
  '动物',
  '植物',
  '食品',
  '饮料',
  '餐饮',
  '酒店',
  '购物',
  '消费',
  '理财',
  '税务',
  '法规',
  '法院',
  '司法',
  '刑事',
  '民事',
  '行政',
  '战争',
];

export const ZH_TASKS: readonly string[] = [
  '开放式生成',
  '分类',
  '问答',
  '编辑',
  '摘要',
  '写作',
  '翻译',
  '写代码',
  '分析',
  '代码解析',
  '常识推理',
  '写信',
  '抽取',
  '推荐',
];

export const EN_TOPICS: readonly string[] = [
  'technology',
  'entertainment',
  'sports',
  'finance',
  'current affairs',
  'education',
  'medicine',
  'travel',
  'food',
  'cars',
  'real estate',
  'culture',
  'history',
  'geography',
  'nature',
  'humanities',
  'society',
  'law',
  'military',
  'politics',
  'economics',
  'literature',
  'art',
  'religion',
  'philosophy',
  'linguistics',
  'mathematics',
  'physics',
  'chemistry',
  'biology',
  'earth science',
  'astronomy',
  'computer science',
  'engineering',
  'architecture',
  'design',
  'music',
  'dance',
  'film',
  'television',
  'animation',
  'games',
  'health',
  'beauty',
  'fashion',
  'home',
  'appliances',
  'furniture',
  'renovation',
  'pregnancy and babies',
  'parenting',
  'careers',
  'work',
  'daily life',
  'wellness',
  'psychology',
  'emotions',
  'relationships',
  'social life',
  'friendship',
  'dating',
  'marriage',
  'family',
  'parent-child',
  'pets',
  'animals',
  'plants',
  'food products',
  'beverages',
  'restaurants',
  'hotels',
  'shopping',
  'consumer affairs',
  'personal finance',
  'taxes',
  'regulations',
  'courts',
  'justice',
  'criminal law',
  'civil law',
  'public administration',
  'war',
];

export const EN_TASKS: readonly string[] = [
  'open-ended generation',
  'classification',
  'question answering',
  'editing',
  'summarization',
  'writing',
  'translation',
  'coding',
  'analysis',
  'code explanation',
  'commonsense reasoning',
  'letter writing',
  'extraction',
  'recommendation',
];

/**
 * Placeholders: {topics} {tasks} {inputMaxChars} {outputMaxChars} {count}. Requirements 1–6 mirror the
 * original's (diverse topics, diverse task types, say when a task cannot be done from text alone,
 * language, a substantive input of bounded length, a real answer of bounded length).
 */
export const ZH_TEMPLATE = [
  '请尽可能生成多样化的任务指令以及对应的回答，这些数据将用于人工评估模型完成指令的能力。要求：',
  '1. 主题要多样，覆盖各个领域，比如：{topics}等。',
  '2. 表达方式要多样，贴近真实的问题；指令类型要多样，比如：{tasks}等。',
  '3. 如果某条指令仅凭文本无法完成，请给出说明无法处理的回复。',
  '4. 除非指令特别要求，请使用中文；指令可以是祈使句、疑问句或其他合适的句式。',
  '5. 为每条指令提供恰当、贴近真实情况的<input>，不要只写占位符；<input>要有实际内容并有一定难度，不超过{inputMaxChars}字。如果指令不需要输入，<input>留空。',
  '6. <output>要恰当、真实地回应指令，不能只是答应或拒绝；如果需要更多信息，请推测用户意图并尽量作答。<output>少于{outputMaxChars}字。',
  '',
  '请给出满足以上要求的{count}条JSON格式数据，每条数据包含"instruction"、"input"、"output"三个字段：',
].join('\n');

export const EN_TEMPLATE = [
  'Generate a set of task instructions that are as diverse as possible, each with its answer. They will be used to evaluate by hand how well a model follows instructions. Requirements:',
  '1. Diverse topics from many fields, for example: {topics}.',
  '2. Diverse wording close to real questions, and diverse task types, for example: {tasks}.',
  '3. If an instruction cannot be completed from text alone, the answer should say that it cannot be done.',
  '4. Write in English unless the instruction asks otherwise; an instruction may be an imperative, a question, or any other fitting form.',
  '5. Give each instruction a realistic <input> with real substance (not a bare placeholder), at most {inputMaxChars} characters. Leave <input> empty when the instruction needs no input.',
  '6. The <output> must answer the instruction properly, not merely agree or refuse; if more information is needed, infer the intent and answer anyway. <output> is shorter than {outputMaxChars} characters.',
  '',
  'Give {count} items in JSON format that meet these requirements, each with the fields "instruction", "input" and "output":',
].join('\n');

export interface PromptSpec {
  lang: PromptLanguage;
  topics: readonly string[];
  tasks: readonly string[];
  template: string;
  /** how many topics / task types each prompt names (10 / 10 in the original) */
  topicsPerPrompt: number;
  tasksPerPrompt: number;
  /** items asked for per request (20 in the original) */
  itemsPerRequest: number;
  inputMaxChars: [number, number];
  outputMaxChars: [number, number];
}

export function defaultPromptSpec(lang: PromptLanguage = 'zh'): PromptSpec {
  return {
    lang,
    topics: lang === 'zh' ? ZH_TOPICS : EN_TOPICS,
    tasks: lang === 'zh' ? ZH_TASKS : EN_TASKS,
    template: lang === 'zh' ? ZH_TEMPLATE : EN_TEMPLATE,
    topicsPerPrompt: 10,
    tasksPerPrompt: 10,
    itemsPerRequest: 20,
    inputMaxChars: [80, 120],
    outputMaxChars: [128, 512],
  };
}

export interface GeneratedPrompt {
  /** the request number within the run; prompt text is a pure function of (seed, index, spec) */
  index: number;
  text: string;
  topics: string[];
  tasks: string[];
  inputMaxChars: number;
  outputMaxChars: number;
}

export function buildPrompt(spec: PromptSpec, seed: number, index: number): GeneratedPrompt {
  const rng = requestRng(seed, index);
  const topics = sample(rng, spec.topics, Math.min(spec.topicsPerPrompt, spec.topics.length));
  const tasks = sample(rng, spec.tasks, Math.min(spec.tasksPerPrompt, spec.tasks.length));
  const inputMaxChars = randInt(rng, spec.inputMaxChars[0], spec.inputMaxChars[1]);
  const outputMaxChars = randInt(rng, spec.outputMaxChars[0], spec.outputMaxChars[1]);
  const sep = spec.lang === 'zh' ? '、' : ', ';
  const values: Record<string, string> = {
    topics: topics.join(sep),
    tasks: tasks.join(sep),
    inputMaxChars: String(inputMaxChars),
    outputMaxChars: String(outputMaxChars),
    count: String(spec.itemsPerRequest),
  };
  const text = spec.template.replace(/\{(topics|tasks|inputMaxChars|outputMaxChars|count)\}/g, (_, k: string) => values[k]);
  return { index, text, topics, tasks, inputMaxChars, outputMaxChars };
}

/** Reads a list file: one entry per line, blank lines and lines starting with # ignored. */
export function parseListFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/** JSON schema sent as response_format when --structured is on. */
export const ITEMS_JSON_SCHEMA = {
  name: 'instruction_items',
  strict: true,
  schema: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            instruction: { type: 'string' },
            input: { type: 'string' },
            output: { type: 'string' },
          },
          required: ['instruction', 'input', 'output'],
          additionalProperties: false,
        },
      },
    },
    required: ['items'],
    additionalProperties: false,
  },
} as const;

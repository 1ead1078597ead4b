/**
 * Which weights a LoRA config touches, matched exactly like PEFT.
 *
 * PEFT matches *module* names (`model.layers.0.self_attn.q_proj`), not weight names; weight names with a
 * trailing `.weight` are accepted here and the suffix is dropped first.
 *  - target_modules as a string: a regular expression that must match the whole module name
 *    (Python `re.fullmatch`).
 *  - target_modules as a list: a module matches if its name equals an entry or ends with `.` + entry
 *    (so `q_proj` matches `model.layers.3.self_attn.q_proj`, and `proj` matches nothing).
 *  - `all-linear`: every linear layer except the output layer (`lm_head`).
 *  - modules_to_save: a module matches if its name ends with an entry (plain `str.endswith`, no dot).
 */
import { LoraError } from './errors.js';

/** The module name of a weight name (`…q_proj.weight` → `…q_proj`). */
export function moduleNameOf(weightName: string): string {
  return weightName.replace(/\.(weight|bias)$/, '');
}

/** PEFT's check_target_module_exists for a LLaMA weight or module name. */
export function matchesTargetModule(weightName: string, targets: readonly string[] | string): boolean {
  const moduleName = moduleNameOf(weightName);
  if (typeof targets === 'string') {
    if (targets === 'all-linear') return isLinearModule(moduleName) && !moduleName.endsWith('lm_head');
    return fullMatch(targets, moduleName);
  }
  if (targets.length === 1 && targets[0] === 'all-linear') return matchesTargetModule(weightName, 'all-linear');
  return targets.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

/** PEFT's modules_to_save rule (endswith, no dot). */
export function matchesModulesToSave(weightName: string, modulesToSave: readonly string[]): boolean {
  const moduleName = moduleNameOf(weightName);
  return modulesToSave.some((m) => moduleName.endsWith(m));
}

/** The linear layers of a LLaMA decoder (the only modules LoRA is applied to here). */
const LINEAR_SUFFIXES = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

export function isLinearModule(moduleName: string): boolean {
  return moduleName === 'lm_head' || LINEAR_SUFFIXES.some((s) => moduleName.endsWith(`.${s}`));
}

const regexCache = new Map<string, RegExp>();
function fullMatch(pattern: string, text: string): boolean {
  let re = regexCache.get(pattern);
  if (!re) {
    try {
      re = new RegExp(`^(?:${pattern})$`);
    } catch (err) {
      throw new LoraError(`target_modules regular expression ${JSON.stringify(pattern)} is invalid (${(err as Error).message})`);
    }
    regexCache.set(pattern, re);
  }
  return re.test(text);
}

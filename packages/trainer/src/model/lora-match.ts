/** PEFT's target-module rule: a module matches a target when its name equals it or ends with `.target`. */
export function matchesTargetModule(moduleName: string, targets: string[]): boolean {
  return targets.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

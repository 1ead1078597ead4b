/**
 * Unicode scripts and SentencePiece's piece-validity rule (TrainerInterface::IsValidSentencePiece).
 *
 * SentencePiece looks the script of a code point up in a table generated from Unicode's Scripts.txt;
 * we ask the JavaScript engine, whose `\p{Script=…}` property escapes come from the same file.
 */

/** Script names in the order they are tried (frequent first), as `\p{Script=…}` accepts them. */
const SCRIPT_NAMES = [
  'Han',
  'Common',
  'Latin',
  'Inherited',
  'Hiragana',
  'Katakana',
  'Hangul',
  'Cyrillic',
  'Greek',
  'Arabic',
  'Hebrew',
  'Thai',
  'Devanagari',
  'Bopomofo',
  'Adlam',
  'Ahom',
  'Anatolian_Hieroglyphs',
  'Armenian',
  'Avestan',
  'Balinese',
  'Bamum',
  'Bassa_Vah',
  'Batak',
  'Bengali',
  'Bhaiksuki',
  'Brahmi',
  'Braille',
  'Buginese',
  'Buhid',
  'Canadian_Aboriginal',
  'Carian',
  'Caucasian_Albanian',
  'Chakma',
  'Cham',
  'Cherokee',
  'Chorasmian',
  'Coptic',
  'Cuneiform',
  'Cypriot',
  'Cypro_Minoan',
  'Deseret',
  'Dives_Akuru',
  'Dogra',
  'Duployan',
  'Egyptian_Hieroglyphs',
  'Elbasan',
  'Elymaic',
  'Ethiopic',
  'Georgian',
  'Glagolitic',
  'Gothic',
  'Grantha',
  'Gujarati',
  'Gunjala_Gondi',
  'Gurmukhi',
  'Hanifi_Rohingya',
  'Hanunoo',
  'Hatran',
  'Imperial_Aramaic',
  'Inscriptional_Pahlavi',
  'Inscriptional_Parthian',
  'Javanese',
  'Kaithi',
  'Kannada',
  'Kawi',
  'Kayah_Li',
  'Kharoshthi',
  'Khitan_Small_Script',
  'Khmer',
  'Khojki',
  'Khudawadi',
  'Lao',
  'Lepcha',
  'Limbu',
  'Linear_A',
  'Linear_B',
  'Lisu',
  'Lycian',
  'Lydian',
  'Mahajani',
  'Makasar',
  'Malayalam',
  'Mandaic',
  'Manichaean',
  'Marchen',
  'Masaram_Gondi',
  'Medefaidrin',
  'Meetei_Mayek',
  'Mende_Kikakui',
  'Meroitic_Cursive',
  'Meroitic_Hieroglyphs',
  'Miao',
  'Modi',
  'Mongolian',
  'Mro',
  'Multani',
  'Myanmar',
  'Nabataean',
  'Nag_Mundari',
  'Nandinagari',
  'New_Tai_Lue',
  'Newa',
  'Nko',
  'Nushu',
  'Nyiakeng_Puachue_Hmong',
  'Ogham',
  'Ol_Chiki',
  'Old_Hungarian',
  'Old_Italic',
  'Old_North_Arabian',
  'Old_Permic',
  'Old_Persian',
  'Old_Sogdian',
  'Old_South_Arabian',
  'Old_Turkic',
  'Old_Uyghur',
  'Oriya',
  'Osage',
  'Osmanya',
  'Pahawh_Hmong',
  'Palmyrene',
  'Pau_Cin_Hau',
  'Phags_Pa',
  'Phoenician',
  'Psalter_Pahlavi',
  'Rejang',
  'Runic',
  'Samaritan',
  'Saurashtra',
  'Sharada',
  'Shavian',
  'Siddham',
  'SignWriting',
  'Sinhala',
  'Sogdian',
  'Sora_Sompeng',
  'Soyombo',
  'Sundanese',
  'Syloti_Nagri',
  'Syriac',
  'Tagalog',
  'Tagbanwa',
  'Tai_Le',
  'Tai_Tham',
  'Tai_Viet',
  'Takri',
  'Tamil',
  'Tangsa',
  'Tangut',
  'Telugu',
  'Thaana',
  'Tibetan',
  'Tifinagh',
  'Tirhuta',
  'Toto',
  'Ugaritic',
  'Vai',
  'Vithkuqi',
  'Wancho',
  'Warang_Citi',
  'Yezidi',
  'Yi',
  'Zanabazar_Square',
] as const;

const SCRIPT_REGEXES: RegExp[] = SCRIPT_NAMES.map((name) => {
  try {
    return new RegExp(`^\\p{Script=${name}}$`, 'u');
  } catch {
    return /(?!)/; // a script this engine's Unicode version does not know yet
  }
});

export const SCRIPT_HAN = 0;
export const SCRIPT_COMMON = 1;
export const SCRIPT_INHERITED = 3;
const SCRIPT_HIRAGANA = 4;
const SCRIPT_KATAKANA = 5;
/** "No script constraint" (SentencePiece's kAnyType). */
export const SCRIPT_ANY = -1;

const scriptCache = new Map<number, number>();

/** Script index of a code point as SentencePiece's trainer sees it (kana are merged into Han). */
export function trainerScriptOf(cp: number): number {
  let s = scriptCache.get(cp);
  if (s !== undefined) return s;
  const ch = String.fromCodePoint(cp);
  s = SCRIPT_COMMON; // unassigned code points: SentencePiece's table has no entry → Common
  for (let i = 0; i < SCRIPT_REGEXES.length; i++) {
    if (SCRIPT_REGEXES[i]!.test(ch)) {
      s = i;
      break;
    }
  }
  // Merge Hiragana/Katakana (and the Katakana long vowel mark) into Han, as SentencePiece does.
  if (s === SCRIPT_HIRAGANA || s === SCRIPT_KATAKANA || cp === 0x30fc) s = SCRIPT_HAN;
  scriptCache.set(cp, s);
  return s;
}

export const WS_CHAR = 0x2581; // ▁
export const UNK_CHAR = 0x2585; // ▅ stands for every character outside the kept alphabet
export const UPP_BOUNDARY_CHAR = 0x09; // tab: user-defined symbols are replaced by it in training text

export function isUnicodeDecimalNumber(cp: number): boolean {
  return (cp >= 0x30 && cp <= 0x39) || (cp >= 0xff10 && cp <= 0xff19);
}

/** The TrainerSpec fields that decide which strings may become pieces. */
export interface PieceRules {
  maxSentencepieceLength: number;
  splitByUnicodeScript: boolean;
  splitByNumber: boolean;
  splitByWhitespace: boolean;
  splitDigits: boolean;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
}

/** SentencePiece's IsValidSentencePiece on a code-point sequence. */
export function isValidPiece(cps: ArrayLike<number>, rules: PieceRules): boolean {
  const n = cps.length;
  if (n === 0 || n > rules.maxSentencepieceLength) return false;
  let allWhitespace = true;
  for (let i = 0; i < n; i++) if (cps[i] !== WS_CHAR) allWhitespace = false;
  let prevScript = SCRIPT_ANY;
  for (let pos = 0; pos < n; pos++) {
    const c = cps[pos]!;
    if (c === UNK_CHAR || c === 0 || c === UPP_BOUNDARY_CHAR || c === 0x20) return false;
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    if (c === WS_CHAR) {
      if (!rules.allowWhitespaceOnlyPieces || !allWhitespace) {
        if (rules.treatWhitespaceAsSuffix) {
          if ((rules.splitByWhitespace && pos < n - 1) || (!rules.splitByWhitespace && pos < n - 1 && pos === 0)) {
            return false;
          }
        } else if ((rules.splitByWhitespace && pos > 0) || (!rules.splitByWhitespace && pos > 0 && pos === n - 1)) {
          return false;
        }
      }
      continue;
    }
    let s = trainerScriptOf(c);
    if (s === SCRIPT_INHERITED) s = prevScript;
    const isDigit = isUnicodeDecimalNumber(c);
    if (!rules.splitByNumber && isDigit) s = SCRIPT_ANY;
    if (rules.splitDigits && isDigit && n > 1) return false;
    if (rules.splitByUnicodeScript && s !== SCRIPT_ANY && prevScript !== SCRIPT_ANY && prevScript !== s) {
      return false;
    }
    prevScript = s;
  }
  return true;
}

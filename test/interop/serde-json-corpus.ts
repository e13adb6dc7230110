/**
 * Edge cases of JSON where parsers disagree, each with the verdict of serde_json 1.0.154 (default
 * features: no arbitrary_precision, no float_roundtrip), the parser motosan's FileSessionStore
 * reads every line with. The verdicts are what `serde_json::from_str::<serde_json::Value>` says:
 * motosan parses lines as its own `Message`, but the messages we keep are any agent's JSON
 * objects, so what must hold is that serde_json reads them as JSON at all.
 * test/interop/polyglot.test.ts checks every verdict against the crate itself and that our
 * validator agrees with it, apart from the deliberate differences that test lists.
 *
 * Texts are written with String.raw (`raw`) where they hold JSON escapes, so that `\ud800` is the
 * six characters a client sends; plain string literals hold raw characters (`"\u0001"` is U+0001).
 */

/** Whether a parser reads a text. */
export type Verdict = "accepts" | "refuses";

/** One case: a message text as a client sends it, and whether serde_json accepts it. */
export interface SerdeJsonCase {
  /** Short and unique: the tests report cases by name. */
  name: string;
  text: string;
  serdeJson: Verdict;
}

const raw = String.raw;
const accepts = (name: string, text: string): SerdeJsonCase => ({
  name,
  text,
  serdeJson: "accepts",
});
const refuses = (name: string, text: string): SerdeJsonCase => ({
  name,
  text,
  serdeJson: "refuses",
});
/** An object whose value for "a" nests `depth - 1` arrays: `depth` levels in all. */
const nested = (depth: number) => `{"a":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`;

export const SERDE_JSON_CORPUS: readonly SerdeJsonCase[] = [
  // UTF-16 surrogates written as \u escapes: serde_json decodes strings to UTF-8, which cannot
  // hold half a pair.
  refuses("lone leading surrogate escape", raw`{"s":"\ud800"}`),
  refuses("lone leading surrogate escape, upper case", raw`{"s":"x\uD83D"}`),
  refuses("lone trailing surrogate escape", raw`{"s":"\udc00"}`),
  refuses("last trailing surrogate escape", raw`{"s":"\udfff"}`),
  refuses("lone surrogate escape in a key", raw`{"\udbff":1}`),
  refuses("surrogate pair escaped in reverse order", raw`{"s":"\ude00\ud83d"}`),
  refuses("leading escape then a BMP escape", raw`{"s":"\ud83d\u0041"}`),
  refuses("leading escape then a plain character", raw`{"s":"\ud83dA"}`),
  refuses("leading escape then another escape", raw`{"s":"\ud83d\n"}`),
  refuses("two leading escapes then a trailing one", raw`{"s":"\ud800\ud800\udc00"}`),
  refuses("pair then a lone trailing escape", raw`{"s":"\ud83d\ude00\ude00"}`),
  refuses("escaped backslash then a lone escape", raw`{"s":"\\\ud800"}`),
  refuses(
    "lone escape in a string after a pair in another",
    raw`{"a":"\ud83d\ude00","b":"\udc00"}`,
  ),
  accepts("escaped surrogate pair", raw`{"s":"\ud83d\ude00"}`),
  accepts("escaped surrogate pair, mixed case", raw`{"s":"\uD83D\uDe00"}`),
  accepts("highest escaped pair", raw`{"s":"\udbff\udfff"}`),
  accepts("consecutive escaped pairs", raw`{"s":"\ud83e\udd80\ud83d\ude00"}`),
  accepts("escaped backslash then text that looks like an escape", raw`{"s":"\\ud800"}`),
  accepts("character just below the surrogates", raw`{"s":"\ud7ff"}`),
  accepts("character just above the surrogates", raw`{"s":"\ue000"}`),
  accepts("non-BMP character sent as itself", '{"s":"🦀"}'),
  // Other escapes and characters in strings.
  accepts("escaped NUL", raw`{"s":"a\u0000b"}`),
  accepts("escaped NUL in a key", raw`{"\u0000":1}`),
  accepts("every short escape", raw`{"s":"\" \\ \/ \b \f \n \r \t"}`),
  accepts("escaped noncharacters", raw`{"s":"\ufffe\uffff"}`),
  accepts("raw noncharacters", '{"s":"\ufffe\uffff"}'),
  accepts("raw DEL", '{"s":"\u007f"}'),
  accepts("raw C1 control character", '{"s":"\u0085"}'),
  accepts("raw line and paragraph separators", '{"s":"\u2028\u2029"}'),
  accepts("raw byte order mark inside a string", '{"s":"\ufeff"}'),
  refuses("raw NUL in a string", '{"s":"a\u0000b"}'),
  refuses("raw U+001F in a string", '{"s":"\u001f"}'),
  refuses("raw tab in a string", '{"s":"a\tb"}'),
  refuses("raw LF in a string", '{"s":"a\nb"}'),
  refuses("unknown escape", raw`{"s":"\x41"}`),
  refuses("single-quote escape", raw`{"s":"\'"}`),
  refuses("short unicode escape", raw`{"s":"\u12"}`),
  // Numbers: serde_json keeps integers as u64 or i64 when they fit, anything else as f64, and
  // refuses what overflows f64 (as it computes it) rather than store infinity.
  refuses("1e999", '{"n":1e999}'),
  refuses("-1e400", '{"n":-1e400}'),
  refuses("1E400", '{"n":1E400}'),
  refuses("1e+309", '{"n":1e+309}'),
  refuses("1.8e308", '{"n":1.8e308}'),
  refuses("10e308", '{"n":10e308}'),
  // JSON.parse rounds these two down to f64::MAX; serde_json's arithmetic overflows.
  refuses("f64::MAX rounded up in its last digit", '{"n":1.7976931348623158e308}'),
  refuses("just below f64::MAX plus half an ulp", '{"n":1.7976931348623158079e308}'),
  refuses("overflowing number in an array", '{"a":[1,2,1e999]}'),
  refuses("overflowing number after a string holding a quote", raw`{"s":"\"","n":1e999}`),
  refuses("400-digit integer", `{"n":${"9".repeat(400)}}`),
  refuses("310-digit integer", `{"n":1${"0".repeat(309)}}`),
  refuses("400-digit negative integer", `{"n":-${"1".repeat(400)}}`),
  refuses("400-digit mantissa with exponent -90", `{"n":1${"0".repeat(399)}e-90}`),
  refuses("400-digit decimal with exponent 200", `{"n":${"1".repeat(200)}.${"1".repeat(200)}e200}`),
  refuses("exponent past i32", '{"n":1e2147483648}'),
  refuses("exponent i32::MAX", '{"n":1e2147483647}'),
  refuses("tiny mantissa, huge exponent", `{"n":0.${"0".repeat(20)}1e330}`),
  refuses("exponent with leading zeros past the range", '{"n":1e00000000000000000309}'),
  accepts("f64::MAX as Rust and JavaScript print it", '{"n":1.7976931348623157e308}'),
  accepts("-f64::MAX", '{"n":-1.7976931348623157e308}'),
  accepts("1e308", '{"n":1e308}'),
  accepts("1.5e308", '{"n":1.5e308}'),
  accepts("309-digit integer", `{"n":1${"0".repeat(308)}}`),
  accepts("400-digit mantissa with exponent -300", `{"n":1${"0".repeat(399)}e-300}`),
  accepts("400-digit mantissa with exponent -91", `{"n":1${"0".repeat(399)}e-91}`),
  accepts("400-digit fraction", `{"n":0.${"3".repeat(400)}}`),
  accepts("tiny mantissa, exponent in range", `{"n":0.${"0".repeat(20)}1e320}`),
  accepts("exponent with leading zeros in range", '{"n":1e000000000000000000308}'),
  accepts("1e-400 underflows to zero", '{"n":1e-400}'),
  accepts("smallest subnormal", '{"n":5e-324}'),
  accepts("below the smallest subnormal", '{"n":2e-324}'),
  accepts("negative exponent past i32", '{"n":1e-2147483649}'),
  accepts("0e999", '{"n":0e999}'),
  accepts("-0e+999", '{"n":-0e+999}'),
  accepts("0.0e999", '{"n":0.0e999}'),
  accepts("zero with an exponent past i32", '{"n":0e99999999999}'),
  accepts("zero with 400 fraction digits and a huge exponent", `{"n":0.${"0".repeat(400)}e999}`),
  accepts("u64::MAX", '{"n":18446744073709551615}'),
  accepts("u64::MAX + 1", '{"n":18446744073709551616}'),
  accepts("i64::MIN", '{"n":-9223372036854775808}'),
  accepts("i64::MIN - 1", '{"n":-9223372036854775809}'),
  accepts("30-digit integer", '{"n":123456789012345678901234567890}'),
  accepts("integer past u64 with a fraction", '{"n":18446744073709551616.5}'),
  accepts("-0", '{"n":-0}'),
  accepts("-0.0", '{"n":-0.0}'),
  accepts("exponent forms", '{"n":[1E+2,1e-0,2.5E-3,0e0]}'),
  accepts("overflowing number inside a string", '{"s":"1e999 and 1.8e308"}'),
  accepts("many ordinary numbers", '{"v":[0.25,-1.5e-7,3e10,1e99,42,-17]}'),
  refuses("leading zero", '{"n":01}'),
  refuses("leading plus", '{"n":+1}'),
  refuses("bare fraction", '{"n":.5}'),
  refuses("trailing point", '{"n":1.}'),
  refuses("hexadecimal", '{"n":0x10}'),
  refuses("NaN", '{"n":NaN}'),
  refuses("Infinity", '{"n":Infinity}'),
  // Nesting: serde_json's recursion limit of 128.
  accepts("127 levels of nesting", nested(127)),
  refuses("128 levels of nesting", nested(128)),
  // Structure and whitespace.
  accepts("duplicate keys", '{"a":1,"a":2}'),
  accepts("empty key", '{"":1}'),
  accepts("empty object", "{}"),
  accepts("every JSON whitespace between tokens", '\t\r\n {\t"a"\r:\n1 }\t\r\n '),
  refuses("byte order mark before the object", "\ufeff{}"),
  refuses("form feed between tokens", '{"a":\f1}'),
  refuses("vertical tab between tokens", '{"a":\v1}'),
  refuses("no-break space between tokens", '{"a":\u00a01}'),
  refuses("line separator between tokens", '{"a":\u20281}'),
  refuses("NUL after the object", "{}\u0000"),
  refuses("trailing comma in an object", '{"a":1,}'),
  refuses("trailing comma in an array", '{"a":[1,]}'),
  refuses("two objects", '{"a":1}{"b":2}'),
  refuses("comment", '{"a":1/* note */}'),
  refuses("single-quoted string", "{'a':1}"),
  refuses("unquoted key", "{a:1}"),
  refuses("empty text", ""),
  // JSON that is not an object: serde_json reads it, the contract refuses it.
  accepts("an array", "[1,2]"),
];

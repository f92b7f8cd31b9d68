// Checks on typed text, the same as the server's (modalchorus.data.text), so a form can say
// what is wrong before anything is sent.

/** A character that draws something: not a space, control, format character (U+200B, …),
 *  lone combining mark or blank glyph (Hangul fillers, blank Braille). */
const VISIBLE = /[^\p{Z}\p{Cc}\p{Cf}\p{Cs}\p{Mn}\p{Me}\u115f\u1160\u3164\uffa0\u2800]/u;

export function hasVisibleCharacter(text: string): boolean {
  return VISIBLE.test(text);
}

/** Length in characters (code points), as the server counts: an emoji is one, not two. */
export function characters(text: string): number {
  return [...text].length;
}

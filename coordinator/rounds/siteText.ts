/**
 * Text an edge sends (why it failed or refused a round) is untrusted: it ends up in the
 * coordinator's log, the round records, the API and researchers' terminals. Control and format
 * characters (terminal escapes, newlines that would forge log lines, bidirectional overrides
 * that reorder what a reader sees) become spaces, and its length is bounded.
 */

/** Characters of a site's reason kept (the rest is cut, marked with an ellipsis). */
export const SITE_TEXT_MAX = 500;

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `text` safe to log and display: no control or format characters, at most `max` characters. */
export function siteText(text: string, max = SITE_TEXT_MAX): string {
  const clean = text.replace(UNSAFE, ' ');
  const chars = Array.from(clean); // by code point: a cut never splits a surrogate pair
  return chars.length <= max ? clean : `${chars.slice(0, max - 1).join('')}…`;
}

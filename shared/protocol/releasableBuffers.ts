/**
 * Frees big message buffers as soon as their last user is done with them, instead of at some
 * later garbage collection.
 *
 * A round moves tens of megabytes through the coordinator (a 4 MB update from each site, a 4 MB
 * model frame to each): left to the garbage collector, that memory piles up between collections
 * (peak RSS) and the collections it forces are paid on the event loop. Detaching an ArrayBuffer
 * (`transfer(0)`) frees its memory at once.
 *
 * Only the owner of a buffer may mark it: the message channel marks a received frame that has an
 * ArrayBuffer of its own (never a slice of a shared pool or of a reused reassembly buffer); a
 * sender marks a frame it encoded. Whoever uses the data last releases it; after that every view
 * of it is empty. Releasing an unmarked buffer does nothing.
 */

const releasable = new WeakSet<ArrayBuffer>();

/** Buffers smaller than this are left to the garbage collector (not worth tracking). */
export const RELEASABLE_MIN_BYTES = 64 * 1024;

/** Marks `view`'s memory as releasable if the view spans an ArrayBuffer of its own. */
export function markReleasable(view: Uint8Array): void {
  const buffer = view.buffer;
  if (!(buffer instanceof ArrayBuffer) || view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength < RELEASABLE_MIN_BYTES) return;
  releasable.add(buffer);
}

/**
 * Frees the memory behind `view` (any view of a marked buffer) now. Returns whether it did;
 * all views of the buffer are empty afterwards.
 */
export function releaseBuffer(view: ArrayBufferView): boolean {
  const buffer = view.buffer;
  if (!(buffer instanceof ArrayBuffer) || !releasable.delete(buffer)) return false;
  buffer.transfer(0);
  return true;
}

// Just enough H.264 (Annex-B) to tell keyframes from other access units.

const NAL_IDR = 5;
const NAL_SEI = 6;
const NAL_SPS = 7;
const SEI_RECOVERY_POINT = 6;

/** Yields `{type, offset}` for each NAL unit of Annex-B bytes (offset of its header byte). */
export function* nalUnits(bytes) {
  const n = bytes.length;
  for (let i = 0; i + 3 < n; i++) {
    if (bytes[i + 2] > 1) {
      i += 2;
    } else if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      yield { type: bytes[i + 3] & 0x1f, offset: i + 3 };
      i += 3;
    }
  }
}

/**
 * True when the access unit starts a picture that decodes on its own: it holds an
 * IDR slice, or SPS + a recovery-point SEI (intra refresh). Only the NAL units up to
 * the first slice are looked at (the server puts SPS and PPS in front of keyframes).
 */
export function isKeyframe(bytes) {
  let sps = false;
  let recovery = false;
  for (const unit of nalUnits(bytes)) {
    if (unit.type === NAL_IDR) return true;
    if (unit.type >= 1 && unit.type <= 4) break;
    if (unit.type === NAL_SPS) sps = true;
    // The first SEI message's payload type byte follows the NAL header.
    if (unit.type === NAL_SEI && bytes[unit.offset + 1] === SEI_RECOVERY_POINT) recovery = true;
  }
  return sps && recovery;
}

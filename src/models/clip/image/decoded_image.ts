// What an image decoder gives: pixels in the mode Pillow would open the file in (the GIF and the
// sharp-based decoders both return it).

/** Pillow's image modes that CLIP preprocessing distinguishes. '1' is a bilevel image (1-bit grey
 * PNG); it is resampled with NEAREST like P. 'CMYK' (CMYK JPEGs) is resized as 4 plain channels and
 * then converted with Pillow's naive cmyk2rgb. */
export type ImageMode = 'RGB' | 'RGBA' | 'L' | 'LA' | 'P' | '1' | 'CMYK';

export interface DecodedImage {
  mode: ImageMode;
  width: number;
  height: number;
  /** Bytes per pixel in `data`: RGB 3, RGBA 4, L 1, LA 2, 1 1 (0 or 255), P 3, CMYK 4. */
  channels: number;
  /** Interleaved rows, top to bottom. Mode P is given expanded through its palette (what Pillow's
   * convert('RGB') yields): NEAREST only selects pixels, so it commutes with the palette lookup and
   * resizing the expanded pixels is exact. */
  data: Uint8Array;
  /** Mode P: the palette as RGB triplets. */
  palette?: Uint8Array;
  /** The source format. */
  format: 'png' | 'jpeg' | 'webp' | 'gif';
}

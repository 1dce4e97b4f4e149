/**
 * A canvas to draw a digit on (mouse, pen or touch), and the preprocessing that turns the drawing into what the
 * MNIST models were trained on: the ink's bounding box scaled into 20×20 and placed in a 28×28 field by its centre
 * of mass (LeCun et al.'s MNIST normalisation), values 0…1, row-major.
 */
const SIZE = 280;

export class DigitCanvas {
  readonly canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  #drawing = false;
  #last: { x: number; y: number } | undefined;
  #inked = false;
  onStroke: () => void = () => undefined;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
    canvas.width = SIZE;
    canvas.height = SIZE;
    this.#ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.#drawing = true;
      this.#last = this.#point(e);
      this.#dot(this.#last);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.#drawing) return;
      const p = this.#point(e);
      this.#line(this.#last!, p);
      this.#last = p;
    });
    const end = () => {
      if (!this.#drawing) return;
      this.#drawing = false;
      this.onStroke();
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  get empty(): boolean {
    return !this.#inked;
  }

  clear(): void {
    this.#ctx.fillStyle = '#000';
    this.#ctx.fillRect(0, 0, SIZE, SIZE);
    this.#ink(false);
  }

  /** Whether anything is drawn; the canvas says so too (data-empty: the page's "draw here" hint shows while empty). */
  #ink(inked: boolean): void {
    this.#inked = inked;
    this.canvas.dataset.empty = String(!inked);
  }

  /** Paints a 28×28 digit (0…1) onto the canvas, e.g. a sample for keyboard users. */
  show(pixels: ArrayLike<number>): void {
    this.clear();
    const cell = SIZE / 28;
    for (let i = 0; i < 784; i++) {
      const v = Math.round(255 * Math.min(1, Math.max(0, pixels[i]!)));
      if (!v) continue;
      this.#ctx.fillStyle = `rgb(${v},${v},${v})`;
      this.#ctx.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell, cell);
    }
    this.#ink(true);
  }

  #point(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * SIZE, y: ((e.clientY - r.top) / r.height) * SIZE };
  }
  #dot(p: { x: number; y: number }): void {
    this.#line(p, p);
  }
  #line(a: { x: number; y: number }, b: { x: number; y: number }): void {
    const c = this.#ctx;
    c.strokeStyle = '#fff';
    c.lineWidth = 22;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(a.x, a.y);
    c.lineTo(b.x, b.y);
    c.stroke();
    if (!this.#inked) this.#ink(true);
  }

  /** The drawing as a 784-value MNIST input (zeros when nothing is drawn). */
  toInput(): Float32Array {
    const { data } = this.#ctx.getImageData(0, 0, SIZE, SIZE);
    let x0 = SIZE,
      y0 = SIZE,
      x1 = -1,
      y1 = -1;
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        if (data[(y * SIZE + x) * 4]! > 20) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
    const out = new Float32Array(784);
    if (x1 < 0) return out;
    // Scale the ink's box so its longer side is 20 px (keeping the aspect ratio).
    const w = x1 - x0 + 1,
      h = y1 - y0 + 1,
      scale = 20 / Math.max(w, h);
    const small = document.createElement('canvas');
    small.width = 28;
    small.height = 28;
    const s = small.getContext('2d', { willReadFrequently: true })!;
    s.imageSmoothingEnabled = true;
    s.imageSmoothingQuality = 'high';
    const dw = w * scale,
      dh = h * scale;
    s.drawImage(this.canvas, x0, y0, w, h, (28 - dw) / 2, (28 - dh) / 2, dw, dh);
    const px = s.getImageData(0, 0, 28, 28).data;
    const box = new Float32Array(784);
    let mass = 0,
      mx = 0,
      my = 0;
    for (let i = 0; i < 784; i++) {
      const v = px[i * 4]! / 255;
      box[i] = v;
      mass += v;
      mx += v * (i % 28);
      my += v * Math.floor(i / 28);
    }
    // Shift so the centre of mass sits at the field's centre.
    const dx = Math.round(13.5 - mx / mass),
      dy = Math.round(13.5 - my / mass);
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const sx = x - dx,
          sy = y - dy;
        if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = box[sy * 28 + sx]!;
      }
    return out;
  }
}

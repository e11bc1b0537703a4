/**
 * `InflateStage`: the first stage of a direction whose source compresses (permessage-deflate) and
 * whose frames cannot pass through untouched. Every later stage, `onFrame` included, sees plain
 * payloads with RSV1 clear.
 *
 * @packageDocumentation
 */
import { Transform } from 'readable-stream';
import { WebSocketProxyError } from '../errors.js';
import type { Frame } from '../frame.js';
import { Utf8Validator } from '../protocol/utf8.js';
import type { DeflateHop } from './deflate-hop.js';

type Callback = (error?: Error | null, frame?: Frame) => void;

/**
 * Inflates the data frames of compressed messages (RSV1 on their first frame), one frame at a time
 * and in order, each into one frame with the same type and FIN. Uncompressed messages and control
 * frames pass as they are. It fails with the inflater's `WSP_ERR_MESSAGE_TOO_LARGE` (1009, counted
 * while inflating: a deflate bomb is never held whole), `WSP_ERR_INFLATE_FAILED` (1007), or
 * `WSP_ERR_INVALID_UTF8` (1007) for inflated text that is not UTF-8: the parser cannot check
 * compressed text, so it is checked here.
 */
export class InflateStage extends Transform {
  /** Whether the open message is compressed. */
  private compressed = false;
  /** Whether the open compressed message is text to validate. */
  private checkText = false;
  private utf8: Utf8Validator | undefined;

  /**
   * @param hop - the source side's hop (its inflater is made on the first compressed message)
   * @param validateUtf8 - whether inflated text is validated
   */
  constructor(private readonly hop: DeflateHop, private readonly validateUtf8: boolean) {
    // One frame ahead: an inflated payload may be as large as the message limit.
    super({ objectMode: true, highWaterMark: 1 });
  }

  /** @internal */
  override _transform(frame: Frame, _encoding: string, callback: Callback): void {
    const type = frame.type;
    if (type !== 'text' && type !== 'binary' && type !== 'continuation') {
      callback(null, frame);
      return;
    }
    if (type !== 'continuation') {
      this.compressed = frame.rsv1;
      this.checkText = this.compressed && type === 'text' && this.validateUtf8;
    }
    if (!this.compressed) {
      callback(null, frame);
      return;
    }
    this.hop.inflater().inflate(frame.payload, frame.fin).then(
      (payload) => this.inflated(frame, payload, callback),
      (err: Error) => callback(err),
    );
  }

  private inflated(frame: Frame, payload: Buffer, callback: Callback): void {
    if (this.checkText) {
      const utf8 = (this.utf8 ??= new Utf8Validator());
      // "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
      // not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_"
      // (RFC 6455 section 8.1): for a compressed message, the inflated bytes are that stream.
      if (!(utf8.write(payload) && (!frame.fin || utf8.end()))) {
        utf8.reset();
        callback(new WebSocketProxyError('WSP_ERR_INVALID_UTF8', 'inflated text is not UTF-8'));
        return;
      }
      if (frame.fin) utf8.reset();
    }
    if (frame.fin) this.compressed = false;
    callback(null, { type: frame.type, fin: frame.fin, payload, rsv1: false });
  }
}

// @koa/multer ships no type declarations (and @types/koa__multer describes an
// older release); Cairn uses only a custom storage engine and .array().
declare module '@koa/multer' {
  import type { IncomingMessage } from 'node:http';
  import type { Readable } from 'node:stream';
  import type { Middleware } from 'koa';

  namespace multer {
    interface File {
      fieldname: string;
      originalname: string;
      encoding: string;
      mimetype: string;
      stream: Readable;
    }
    interface StorageEngine {
      _handleFile(req: IncomingMessage, file: File, cb: (err: unknown, info?: Record<string, unknown>) => void): void;
      _removeFile(req: IncomingMessage, file: File & Record<string, unknown>, cb: (err: Error | null) => void): void;
    }
    interface Options {
      storage: StorageEngine;
      limits?: { fieldNameSize?: number; fieldSize?: number; fields?: number; fileSize?: number; files?: number; parts?: number; headerPairs?: number };
      preservePath?: boolean;
      defParamCharset?: string;
    }
    interface Instance {
      array(field: string, maxCount?: number): Middleware;
    }
  }
  function multer(options: multer.Options): multer.Instance;
  export default multer;
}

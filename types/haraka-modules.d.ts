declare module 'haraka-dsn' {
  class DSN {
    code: number;
    reply: string | string[];
    static create(code: number, msg: string, subject?: number, detail?: number): DSN;
  }
  export = DSN;
}

declare module 'haraka-constants' {
  const constants: {
    cont: number;
    stop: number;
    deny: number;
    denysoft: number;
    denydisconnect: number;
    disconnect: number;
    ok: number;
    denysoftdisconnect: number;
  };
  export = constants;
}

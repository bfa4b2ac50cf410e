// VS Code client for `nnc lsp`: starts the language server over stdio for
// `.nn` files. The server does the work (diagnostics, hover, inlay hints,
// navigation, completion, formatting); this file only connects them.
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function startClient() {
  const command = vscode.workspace.getConfiguration('nnc').get('path') || 'nnc';
  const server = { command, args: ['lsp'], transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'nn' },
      { scheme: 'untitled', language: 'nn' },
    ],
  };
  client = new LanguageClient('nnc', 'nnc language server', { run: server, debug: server }, clientOptions);
  return client.start();
}

function activate(context) {
  // A new `nnc.path` takes effect without reloading the window.
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('nnc.path')) {
        await deactivate();
        await startClient();
      }
    }),
  );
  return startClient();
}

function deactivate() {
  const c = client;
  client = undefined;
  return c ? c.stop() : undefined;
}

module.exports = { activate, deactivate };

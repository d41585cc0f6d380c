// The "stock" side of tests/e2e/stock-quill.test.mjs: Quill, y-quill, y-websocket and yjs from
// npm, unchanged, wired together the way y-quill's README does it. The test bundles this with
// esbuild and serves it from a small loopback server; `window.STOCK_CONFIG` says where to connect.

import Quill from 'quill'
import QuillCursors from 'quill-cursors'
import * as Y from 'yjs'
import { QuillBinding } from 'y-quill'
import { WebsocketProvider } from 'y-websocket'

Quill.register('modules/cursors', QuillCursors)

const { wsBase, docId, user, token } = window.STOCK_CONFIG

const quill = new Quill('#editor', {
  theme: 'snow',
  modules: {
    cursors: true,
    toolbar: [[{ header: [1, 2, 3, false] }], ['bold', 'italic', 'underline', 'strike']],
    history: { userOnly: true }
  },
  placeholder: 'Stock Quill…'
})

const ydoc = new Y.Doc()
const provider = new WebsocketProvider(wsBase, docId, ydoc, { params: token ? { token } : {} })
const binding = new QuillBinding(ydoc.getText('content'), quill, provider.awareness)
provider.awareness.setLocalStateField('user', user)

window.stock = { quill, ydoc, provider, binding }

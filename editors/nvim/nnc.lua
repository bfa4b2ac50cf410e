-- Neovim support for `.nn` files: registers `nnc lsp` with the built-in LSP
-- client (diagnostics, hover, inlay hints, go to definition, references,
-- completion, formatting).
--
-- Install: copy this file to ~/.config/nvim/plugin/nnc.lua, or load it from
-- init.lua with `dofile('/path/to/editors/nvim/nnc.lua')`. Set
-- `vim.g.nnc_path` first to use an `nnc` that is not on PATH.
--
-- Neovim 0.8+ uses vim.lsp.start (one client per root, reused); 0.7 has no
-- vim.lsp.start, so there the client is started and attached by hand.

local M = {}

-- The project root: the nearest directory with `.git`, else the file's directory.
local function root_dir(bufnr)
  local dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':p:h')
  local git = vim.fn.finddir('.git', dir .. ';')
  if git ~= '' then
    return vim.fn.fnamemodify(git, ':p:h:h')
  end
  return dir
end

local function config(bufnr)
  return {
    name = 'nnc',
    cmd = { vim.g.nnc_path or 'nnc', 'lsp' },
    root_dir = root_dir(bufnr),
  }
end

local clients_by_root = {} -- Neovim 0.7 only

function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local cfg = config(bufnr)
  if vim.lsp.start then
    vim.lsp.start(cfg, { bufnr = bufnr })
    return
  end
  local id = clients_by_root[cfg.root_dir]
  if not id or vim.lsp.client_is_stopped(id) then
    id = vim.lsp.start_client(cfg)
    clients_by_root[cfg.root_dir] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

if vim.filetype and vim.filetype.add then
  vim.filetype.add({ extension = { nn = 'nn' } })
end

local group = vim.api.nvim_create_augroup('nnc', { clear = true })
-- Also for Neovim 0.7, whose Lua filetype detection is off by default.
vim.api.nvim_create_autocmd({ 'BufRead', 'BufNewFile' }, {
  group = group,
  pattern = '*.nn',
  command = 'setfiletype nn',
})
vim.api.nvim_create_autocmd('FileType', {
  group = group,
  pattern = 'nn',
  callback = function(args)
    vim.bo[args.buf].commentstring = '// %s'
    M.attach(args.buf)
  end,
})

return M

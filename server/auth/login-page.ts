// The login page: plain HTML with no script, so it works under a strict
// Content-Security-Policy and without the viewer loaded.

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function loginPage(opts: { next: string; failed: boolean; locked: boolean; authOff: boolean }): string {
  const notice = opts.authOff
    ? '<p class="warn">Authentication is off (AUTH=off): every caller acts as an administrator. For local experiments only.</p>'
    : opts.locked
      ? '<p class="error" role="alert">Too many failed logins for this user. Try again in a quarter of an hour.</p>'
      : opts.failed
        ? '<p class="error" role="alert">Unknown user or wrong password.</p>'
        : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cairn · Log in</title>
<style>
  body { font-family: system-ui, sans-serif; background: #0b1a2b; color: #e8eef5; display: grid; place-items: center; min-height: 100vh; margin: 0; }
  form { background: #13283f; padding: 2rem 2.5rem; border-radius: 8px; width: min(22rem, 90vw); box-shadow: 0 4px 24px #0008; }
  h1 { margin: 0 0 1.25rem; font-size: 1.4rem; font-weight: 600; }
  label { display: block; margin: 0.75rem 0 0.25rem; font-size: 0.9rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.55rem; border-radius: 4px; border: 1px solid #3a5775; background: #0b1a2b; color: inherit; font-size: 1rem; }
  button { margin-top: 1.25rem; width: 100%; padding: 0.6rem; border: 0; border-radius: 4px; background: #5acce6; color: #04121f; font-size: 1rem; font-weight: 600; cursor: pointer; }
  .error { color: #ff9b9b; } .warn { color: #ffd27a; }
</style>
</head>
<body>
<form method="post" action="/auth/login">
  <h1>Cairn</h1>
  ${notice}
  <label for="username">User name</label>
  <input id="username" name="username" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <input type="hidden" name="next" value="${escapeHtml(opts.next)}">
  <button type="submit">Log in</button>
</form>
</body>
</html>
`;
}

// Runs a test with `globalThis.navigator` replaced by `value` (`undefined`: a runtime without one, as Node 20), and
// puts back what was there: Node 20 has no `navigator`, Node 21+ has one (Node 24.5+ with `navigator.locks`).
export async function withNavigator(value, fn) {
  const before = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value, configurable: true, writable: true });
  try {
    return await fn();
  } finally {
    if (before) Object.defineProperty(globalThis, 'navigator', before);
    else delete globalThis.navigator;
  }
}

import { shortRunId } from '../../widgets/lib/format';

describe('shortRunId', () => {
  it('keeps the random tail of a time-ordered (UUIDv7) run id', () => {
    // Two runs started in the same second share their first 8 digits, not their last.
    const first = '019ac5e1c2a07d3e8a41f0c2b7d9e615';
    const second = '019ac5e1c2a17b02951c4e7a0f3d2b48';
    expect(shortRunId(first)).toBe('b7d9e615');
    expect(shortRunId(second)).toBe('0f3d2b48');
    expect(shortRunId(first)).not.toBe(shortRunId(second));
  });
});

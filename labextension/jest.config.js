// Unit tests of the panel's API layer and model (src/__tests__). They run offline in Node:
// ServerConnection (the panel's one way to the server) is replaced by an in-memory server.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};

// What LobeChat's login and database would know about the person chatting: who is signed in and
// the provider settings they saved (the provider's key and "API proxy URL"). The harness sets it before
// each call; the auth and database stubs read it.
export const session = {
  /** LobeHub's user ids look like this: `user_` and 27 characters. */
  userId: 'user_2vQ3cX9kLm8PzR4tYw6NbJ1aHdE',
  /** The provider's key vault as LobeChat stores it (OpenAI's and New API's alike): `{apiKey, baseURL}`. */
  keyVaults: {},
};

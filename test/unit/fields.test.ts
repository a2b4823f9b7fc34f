import { describe, expect, it } from 'vitest';
import type { FieldValue } from '../../engine/config/types.gen.js';
import { compileFields, validateFixedProperties } from '../../engine/sync/fields.js';

type Fields = Record<string, FieldValue>;

const constant = (value: unknown): FieldValue => ({ value });

function mapOk(fields: Fields, row: Record<string, unknown>): Record<string, unknown> {
  const result = compileFields(fields).map(row);
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
  return result.fields;
}

function mapErr(fields: Fields, row: Record<string, unknown>) {
  const result = compileFields(fields).map(row);
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.fields)}`);
  return result;
}

// The seed's "Order completed" examples.
const product = { id: 1, color: 'pink', name: 'tshirt', revenue: 20, inventory: 500 };
const products = [
  { currency: 'USD', price: 40, productName: 'jacket', purchaseTime: '2021-12-17 23:43:47.102', quantity: 1 },
  { currency: 'USD', price: 5, productName: 'socks', quantity: 2 },
];

describe('plain columns', () => {
  it('maps a string and {column} to the column value', () => {
    expect(mapOk({ email: 'email', mail: { column: 'email' } }, { email: 'a@x.io', other: 1 })).toEqual({
      email: 'a@x.io',
      mail: 'a@x.io',
    });
  });

  it('keeps values as the driver returned them, and does not decode JSON text unless asked', () => {
    const when = new Date('2024-01-02T03:04:05Z');
    const row = { n: 12n, d: when, j: '{"a":1}', f: 1.5, b: false };
    expect(mapOk({ n: 'n', d: 'd', j: 'j', f: 'f', b: 'b' }, row)).toEqual(row);
  });

  it('maps NULL to null, but a column absent from the row is a mapping error', () => {
    expect(mapOk({ plan: 'plan' }, { plan: null })).toEqual({ plan: null });
    const err = mapErr({ plan: 'plan' }, { email: 'x' });
    expect(err).toMatchObject({ ok: false, code: 'missing_column', field: 'plan' });
    expect(err.message).toContain('field `plan`');
    expect(err.message).toContain('column `plan`');
  });

  it('does not treat inherited properties as columns', () => {
    expect(mapErr({ s: 'toString' }, {}).code).toBe('missing_column');
  });
});

describe('constants', () => {
  it('sends {value} as given, whatever the row', () => {
    expect(mapOk({ n: constant(42), s: constant('x') }, {})).toEqual({
      n: 42,
      s: 'x',
    });
    expect(mapOk({ o: { value: { a: [1, 2] } } }, {})).toEqual({ o: { a: [1, 2] } });
    expect(mapOk({ z: constant(null) }, {})).toEqual({ z: null });
  });
});

describe('dotted paths', () => {
  it('reads a property inside an object column', () => {
    expect(mapOk({ color: 'traits.color' }, { traits: { color: 'pink' } })).toEqual({ color: 'pink' });
    expect(
      mapOk({ city: { column: 'traits.address.city' } }, { traits: { address: { city: 'Oslo' } } }),
    ).toEqual({
      city: 'Oslo',
    });
  });

  it('prefers a column literally named with a dot', () => {
    expect(mapOk({ color: 'traits.color' }, { 'traits.color': 'red', traits: { color: 'pink' } })).toEqual({
      color: 'red',
    });
    expect(mapOk({ c: 'a.b.c' }, { 'a.b': { c: 3 } })).toEqual({ c: 3 });
  });

  it('decodes JSON text on the way', () => {
    expect(mapOk({ color: 'traits.color' }, { traits: '{"color":"pink"}' })).toEqual({ color: 'pink' });
    expect(mapOk({ city: 'traits.address.city' }, { traits: { address: ' {"city":"Oslo"}' } })).toEqual({
      city: 'Oslo',
    });
  });

  it('gives null for a NULL object column and for a missing property', () => {
    expect(mapOk({ color: 'traits.color' }, { traits: null })).toEqual({ color: null });
    expect(mapOk({ color: 'traits.color' }, { traits: { size: 'M' } })).toEqual({ color: null });
  });

  it('fails the record when the column is not an object', () => {
    const err = mapErr({ color: 'traits.color' }, { traits: 'pink' });
    expect(err.code).toBe('invalid_object');
    expect(err.message).toBe('field `color`: column `traits` holds a string, not an object');
    expect(mapErr({ color: 'traits.color' }, { traits: [1] }).message).toContain('holds an array');
    expect(mapErr({ color: 'traits.color' }, { traits: '{oops' }).message).toContain(
      'text that is not valid JSON',
    );
    expect(mapErr({ city: 'traits.address.city' }, { traits: { address: 7 } }).message).toBe(
      'field `city`: property `address` of column `traits` holds a number, not an object',
    );
  });

  it('names the first segment when neither the dotted nor the plain column exists', () => {
    const err = mapErr({ color: 'traits.color' }, { email: 'x' });
    expect(err.code).toBe('missing_column');
    expect(err.message).toContain('column `traits`');
  });
});

describe('customize object', () => {
  it("builds the seed's product object from columns and properties of an object column", () => {
    const fields: Fields = {
      product: {
        object: {
          id: 'product_id',
          color: { column: 'product.color' },
          title: 'product.name',
          brand: constant('acme'),
        },
      },
    };
    expect(mapOk(fields, { product_id: 1, product })).toEqual({
      product: { id: 1, color: 'pink', title: 'tshirt', brand: 'acme' },
    });
  });

  it('nests, leaves out a property missing in the object column, and keeps NULLs', () => {
    const fields: Fields = {
      user: { object: { plan: 'plan', traits: { object: { color: 'traits.color', size: 'traits.size' } } } },
    };
    expect(mapOk(fields, { plan: null, traits: { color: 'pink' } })).toEqual({
      user: { plan: null, traits: { color: 'pink' } },
    });
  });

  it('reports the nested destination field', () => {
    const err = mapErr({ user: { object: { color: 'traits.color' } } }, { traits: 3 });
    expect(err).toMatchObject({ code: 'invalid_object', field: 'user.color' });
    expect(err.message).toBe('field `user.color`: column `traits` holds a number, not an object');
    expect(mapErr({ user: { object: { plan: 'plan' } } }, {})).toMatchObject({
      code: 'missing_column',
      field: 'user.plan',
    });
  });
});

describe('select object', () => {
  const fields: Fields = { product: { column: 'product', type: 'object' } };

  it("sends the seed's whole product object", () => {
    expect(mapOk(fields, { product })).toEqual({ product });
  });

  it('decodes JSON text and maps NULL to null', () => {
    expect(mapOk(fields, { product: JSON.stringify(product) })).toEqual({ product });
    expect(mapOk(fields, { product: null })).toEqual({ product: null });
  });

  it('fails a record whose value is not an object', () => {
    expect(mapErr({ traits: { column: 'traits', type: 'object' } }, { traits: 'pink' })).toEqual({
      ok: false,
      code: 'invalid_object',
      field: 'traits',
      message: 'field `traits`: column `traits` holds a string, not an object',
    });
    expect(mapErr(fields, { product: '[1,2]' }).message).toContain(
      'holds JSON text with an array, not an object',
    );
    expect(mapErr(fields, { product: new Date(0) }).message).toContain('holds a date');
    expect(mapErr(fields, { product: 5 }).code).toBe('invalid_object');
  });

  it('selects an object inside an object column', () => {
    expect(
      mapOk(
        { addr: { column: 'traits.address', type: 'object' } },
        { traits: { address: { city: 'Oslo' } } },
      ),
    ).toEqual({ addr: { city: 'Oslo' } });
  });
});

describe('customize array', () => {
  const fields: Fields = {
    products: {
      array: {
        column: 'products',
        items: { name: 'productName', price: { column: 'price' }, when: 'purchaseTime' },
      },
    },
  };

  it("keeps and renames the chosen properties of the seed's products; a missing property stays missing", () => {
    expect(mapOk(fields, { products })).toEqual({
      products: [
        { name: 'jacket', price: 40, when: '2021-12-17 23:43:47.102' },
        { name: 'socks', price: 5 },
      ],
    });
  });

  it('decodes JSON text (the array and its items), keeps NULL, and an empty array', () => {
    expect(mapOk(fields, { products: JSON.stringify(products) })).toEqual(mapOk(fields, { products }));
    expect(mapOk(fields, { products: ['{"productName":"hat"}'] })).toEqual({ products: [{ name: 'hat' }] });
    expect(mapOk(fields, { products: null })).toEqual({ products: null });
    expect(mapOk(fields, { products: [] })).toEqual({ products: [] });
  });

  it('keeps a NULL property as null', () => {
    expect(mapOk(fields, { products: [{ productName: null }] })).toEqual({ products: [{ name: null }] });
  });

  it('reads properties inside items by dotted path', () => {
    const f: Fields = { lines: { array: { column: 'order.lines', items: { amount: 'price.amount' } } } };
    expect(mapOk(f, { order: { lines: [{ price: { amount: 3 } }, { sku: 'x' }] } })).toEqual({
      lines: [{ amount: 3 }, {}],
    });
  });

  it('fails a record whose value is not an array or whose items are not objects', () => {
    const notArray = mapErr(fields, { products: { productName: 'x' } });
    expect(notArray).toMatchObject({ code: 'invalid_array', field: 'products' });
    expect(notArray.message).toBe('field `products`: column `products` holds an object, not an array');
    expect(mapErr(fields, { products: 'socks' }).code).toBe('invalid_array');
    const badItem = mapErr(fields, { products: [{ productName: 'a' }, 'b'] });
    expect(badItem.code).toBe('invalid_array');
    expect(badItem.message).toBe(
      'field `products`: item 1 of column `products` holds a string, not an object',
    );
    expect(mapErr(fields, { products: [null] }).message).toContain('item 0 of column `products` is null');
    expect(mapErr(fields, {}).code).toBe('missing_column');
  });
});

describe('select array', () => {
  const fields: Fields = { products: { column: 'products', type: 'array' } };

  it("sends the seed's whole array, decoding JSON text", () => {
    expect(mapOk(fields, { products })).toEqual({ products });
    expect(mapOk(fields, { products: JSON.stringify(products) })).toEqual({ products });
    expect(mapOk(fields, { products: null })).toEqual({ products: null });
  });

  it('fails a record whose value is not an array', () => {
    expect(mapErr(fields, { products: '{"a":1}' }).message).toBe(
      'field `products`: column `products` holds JSON text with an object, not an array',
    );
    expect(mapErr(fields, { products: 3 }).code).toBe('invalid_array');
  });
});

describe('mapper', () => {
  it('lists the top-level columns it reads, once each', () => {
    const mapper = compileFields({
      email: 'email',
      color: 'traits.color',
      user: { object: { email: 'email', size: { column: 'traits.size' }, k: constant(1) } },
      products: { array: { column: 'products', items: { name: 'productName' } } },
      all: { column: 'products', type: 'array' },
    });
    expect(mapper.columns()).toEqual(['email', 'traits', 'products']);
  });

  it('names the column each field reads when every field reads one as it is, and nothing otherwise', () => {
    const plain = compileFields({ id: 'id', mail: { column: 'email' }, color: 'traits.color' });
    expect(plain.plainColumns()).toEqual(
      new Map([
        ['id', 'id'],
        ['mail', 'email'],
        ['color', 'traits.color'],
      ]),
    );
    expect(compileFields({ id: 'id', k: constant(1) }).plainColumns()).toBeUndefined();
    expect(
      compileFields({ id: 'id', all: { column: 'products', type: 'array' } }).plainColumns(),
    ).toBeUndefined();
    expect(compileFields({ id: 'id', user: { object: { email: 'email' } } }).plainColumns()).toBeUndefined();
  });

  it('reports references no described column satisfies, accepting a literal dotted column', () => {
    const mapper = compileFields({ email: 'email', color: 'traits.color' });
    expect(mapper.missingColumns(['email', 'traits.color'])).toEqual([]);
    expect(mapper.missingColumns(['email', 'traits'])).toEqual([]);
    expect(mapper.missingColumns(['mail'])).toEqual([
      { field: 'email', path: 'email', column: 'email' },
      { field: 'color', path: 'traits.color', column: 'traits' },
    ]);
  });

  it('keeps destination fields named like Object.prototype members as plain properties', () => {
    const fields = JSON.parse('{"__proto__": "a", "constructor": "b"}') as Fields;
    const out = mapOk(fields, { a: 1, b: 2 });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":1,"constructor":2}');
  });

  it('maps many rows with one compiled mapper', () => {
    const mapper = compileFields({ id: 'id', color: 'traits.color' });
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      id: i,
      traits: { color: i % 2 ? 'red' : 'blue' },
    }));
    const mapped = rows.map((r) => mapper.map(r));
    expect(mapped.every((m) => m.ok)).toBe(true);
    expect(mapped[7]).toEqual({ ok: true, fields: { id: 7, color: 'red' } });
  });
});

describe('validateFixedProperties', () => {
  const fixed = { product: ['id', 'name', 'price'], products: ['name', 'price'] };

  it('accepts customized objects and arrays within the list, and fields without a list', () => {
    expect(
      validateFixedProperties(
        {
          product: { object: { id: 'id', name: 'product.name' } },
          products: { array: { column: 'products', items: { name: 'productName' } } },
          other: { column: 'traits', type: 'object' },
        },
        fixed,
      ),
    ).toEqual([]);
  });

  it('reports each property outside the list as an error', () => {
    const problems = validateFixedProperties(
      {
        product: { object: { id: 'id', colour: 'product.color' } },
        products: { array: { column: 'products', items: { name: 'productName', qty: 'quantity' } } },
      },
      fixed,
    );
    expect(problems.map((p) => [p.severity, p.code, p.field, p.property])).toEqual([
      ['error', 'unknown_property', 'product', 'colour'],
      ['error', 'unknown_property', 'products', 'qty'],
    ]);
    expect(problems[0]?.message).toBe(
      'field `product` accepts only the properties `id`, `name`, `price`; `colour` would not be sent',
    );
  });

  it('checks the properties of constant objects and arrays of objects', () => {
    const problems = validateFixedProperties(
      {
        product: { value: { id: 1, sku: 'x' } },
        products: constant([{ name: 'a' }, { size: 'M' }]),
      },
      fixed,
    );
    expect(problems.map((p) => p.property)).toEqual(['sku', 'size']);
  });

  it('warns that select object/array cannot be checked', () => {
    const problems = validateFixedProperties({ product: { column: 'product', type: 'object' } }, fixed);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      severity: 'warning',
      code: 'unchecked_properties',
      field: 'product',
    });
  });
});
